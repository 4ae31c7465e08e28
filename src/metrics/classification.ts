/**
 * Streaming metrics of the per-session tasks (binary classification, regression, multi-class), as
 * torchmetrics computes them for Transformers4Rec's BinaryClassificationTask / RegressionTask: update per
 * batch, result over every row seen, reset. Rows whose target is missing (NaN) are skipped by the caller.
 */

/** AUC (ROC, ties counted half: the Mann-Whitney statistic), precision, recall and accuracy at a threshold. */
export class BinaryClassificationMetrics {
  private scores: number[] = [];
  private labels: number[] = [];
  constructor(readonly threshold = 0.5) {}

  /** probabilities [N] in [0, 1], targets [N] (0 or 1; > 0.5 counts as positive). */
  update(probabilities: ArrayLike<number>, targets: ArrayLike<number>): void {
    for (let i = 0; i < targets.length; i++) {
      this.scores.push(probabilities[i]!);
      this.labels.push(targets[i]! > 0.5 ? 1 : 0);
    }
  }

  result(): Record<string, number> {
    const n = this.labels.length;
    let tp = 0, fp = 0, fn = 0, tn = 0;
    for (let i = 0; i < n; i++) {
      const p = this.scores[i]! >= this.threshold;
      if (this.labels[i]) p ? tp++ : fn++;
      else p ? fp++ : tn++;
    }
    return {
      auc: auc(this.scores, this.labels),
      precision: tp + fp ? tp / (tp + fp) : 0,
      recall: tp + fn ? tp / (tp + fn) : 0,
      accuracy: n ? (tp + tn) / n : NaN,
    };
  }

  reset(): void {
    this.scores = [];
    this.labels = [];
  }
}

/** ROC AUC = P(score of a positive > score of a negative) + ½ P(equal); NaN without both classes. */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0;
  let rankSum = 0; // sum of the (1-based, tie-averaged) ranks of the positives
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[idx[k]!]) {
      pos++;
      rankSum += avg;
    }
    i = j + 1;
  }
  const neg = idx.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** RMSE, MAE and MSE over every row. */
export class RegressionMetrics {
  private n = 0;
  private se = 0;
  private ae = 0;
  update(predictions: ArrayLike<number>, targets: ArrayLike<number>): void {
    for (let i = 0; i < targets.length; i++) {
      const d = predictions[i]! - targets[i]!;
      this.se += d * d;
      this.ae += Math.abs(d);
      this.n++;
    }
  }
  result(): Record<string, number> {
    const mse = this.n ? this.se / this.n : NaN;
    return { rmse: Math.sqrt(mse), mae: this.n ? this.ae / this.n : NaN, mse };
  }
  reset(): void {
    this.n = this.se = this.ae = 0;
  }
}

/** Accuracy (top-1) of multi-class predictions: the class with the largest score is the prediction. */
export class MultiClassMetrics {
  private n = 0;
  private correct = 0;
  /** scores [N * C] row-major, targets [N] class ids. */
  update(scores: ArrayLike<number>, numClasses: number, targets: ArrayLike<number>): void {
    for (let r = 0; r < targets.length; r++) {
      let best = 0;
      for (let c = 1; c < numClasses; c++) if (scores[r * numClasses + c]! > scores[r * numClasses + best]!) best = c;
      if (best === targets[r]) this.correct++;
      this.n++;
    }
  }
  result(): Record<string, number> {
    return { accuracy: this.n ? this.correct / this.n : NaN };
  }
  reset(): void {
    this.n = this.correct = 0;
  }
}
