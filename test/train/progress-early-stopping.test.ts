import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { EarlyStopping } from "../../src/train/early-stopping.js";
import { ProgressReporter, formatDuration } from "../../src/train/progress.js";

function fakeStream(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return { stream: { write: (s: string) => chunks.push(s), isTTY, columns }, chunks };
}
function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("ProgressReporter", () => {
  it("plain mode: a line every N batches with loss, examples/s and ETA, and an epoch summary", () => {
    const { stream, chunks } = fakeStream(false);
    const clock = fakeClock();
    const p = new ProgressReporter({ stream, epochs: 3, everyBatches: 2, everySeconds: 0, now: clock.now });
    p.startEpoch(1, 4);
    for (let b = 1; b <= 4; b++) {
      clock.advance(500);
      p.update(b, { loss: b, examples: 100 }); // 100 examples per 0.5 s = 200 ex/s
    }
    p.endEpoch({ "ndcg@20": 0.123456 });
    expect(chunks).toEqual([
      "epoch 1/3  batch 2/4  loss 1.5000  200 ex/s  ETA 1s\n",
      "epoch 1/3  batch 4/4  loss 2.5000  200 ex/s  2s\n",
      "epoch 1/3 done in 2s  loss 2.5000  200 ex/s  ndcg@20 0.1235\n",
    ]);
  });

  it("plain mode: a line when everySeconds passed", () => {
    const { stream, chunks } = fakeStream(false);
    const clock = fakeClock();
    const p = new ProgressReporter({ stream, everySeconds: 10, now: clock.now });
    p.startEpoch(2);
    for (let b = 1; b <= 30; b++) {
      clock.advance(1000);
      p.update(b, { examples: 1000 });
    }
    expect(chunks.length).toBe(3); // at 10 s, 20 s, 30 s
    expect(chunks[0]).toBe("epoch 2  batch 10  1,000 ex/s  10s\n");
  });

  it("TTY mode: one redrawn line with a bar, throttled, clipped to the terminal width; log() keeps it intact", () => {
    const { stream, chunks } = fakeStream(true, 200);
    const clock = fakeClock();
    const p = new ProgressReporter({ stream, epochs: 2, now: clock.now, minRedrawMs: 100 });
    p.startEpoch(1, 10);
    clock.advance(1000);
    p.update(1, { loss: 2, examples: 50 });
    clock.advance(10);
    p.update(2, { loss: 2, examples: 50 }); // throttled: 10 ms later
    expect(chunks).toEqual(["\repoch 1/2  batch 1/10 [==>                 ]  loss 2.0000  50.0 ex/s  ETA 9s\x1b[K"]);
    p.log("checkpoint saved");
    expect(chunks.slice(1, 3)).toEqual(["\r\x1b[K", "checkpoint saved\n"]);
    expect(chunks[3]!.startsWith("\repoch 1/2  batch 2/10 [====>")).toBe(true);
    p.update(10, { loss: 2, examples: 50 }); // the last batch is always drawn
    expect(chunks[4]).toContain("batch 10/10 [====================]");
    p.endEpoch();
    expect(chunks.slice(5)).toEqual(["\r\x1b[K", "epoch 1/2 done in 1s  loss 2.0000  149 ex/s\n"]);
    // narrow terminal
    const narrow = fakeStream(true, 30);
    const q = new ProgressReporter({ stream: narrow.stream, now: clock.now });
    q.startEpoch(1, 5);
    q.update(1, { loss: 1 });
    expect(narrow.chunks[0]).toBe("\r" + "epoch 1  batch 1/5 [====>     ".slice(0, 29) + "\x1b[K");
  });

  it("quiet prints nothing; durations format", () => {
    const { stream, chunks } = fakeStream(false);
    const p = new ProgressReporter({ stream, quiet: true, everyBatches: 1 });
    p.startEpoch(1, 2);
    p.update(1, { loss: 1 });
    p.endEpoch();
    expect(chunks).toEqual([]);
    expect([formatDuration(42), formatDuration(185), formatDuration(3720), formatDuration(NaN)]).toEqual(["42s", "3m05s", "1h02m", "?"]);
  });
});

describe("EarlyStopping", () => {
  it("max mode with patience: stops after `patience` epochs without improvement", () => {
    const es = new EarlyStopping({ metric: "ndcg@20", patience: 2 });
    const seq = [0.1, 0.2, 0.15, 0.2, 0.19];
    const steps = seq.map((v, i) => es.update(i + 1, { "ndcg@20": v, loss: 1 }));
    expect(steps.map((s) => [s.improved, s.stop])).toEqual([[true, false], [true, false], [false, false], [false, true], [false, true]]);
    expect(es.bestEpoch).toBe(2);
    expect(es.bestValue).toBe(0.2);
  });

  it("min mode is the default for losses; minDelta; NaN never improves", () => {
    const es = new EarlyStopping({ metric: "val_loss", patience: 1, minDelta: 0.05 });
    expect(es.config.mode).toBe("min");
    expect(es.update(1, { val_loss: NaN }).improved).toBe(false);
    expect(es.update(2, { val_loss: 1.0 }).improved).toBe(true);
    const s = es.update(3, { val_loss: 0.97 }); // not better by more than 0.05
    expect(s).toMatchObject({ improved: false, stop: true, best: 1.0, bestEpoch: 2 });
  });

  it("restores the best epoch's weights without leaking", () => {
    const w = tf.variable(tf.tensor1d([1, 1]), true, "es_test_w");
    const es = new EarlyStopping({ metric: "recall@20", patience: 5 });
    const base = tf.memory().numTensors;
    es.update(1, { "recall@20": 0.3 }, [w]);
    tf.tidy(() => w.assign(tf.tensor1d([2, 2])));
    es.update(2, { "recall@20": 0.5 }, [w]); // best
    tf.tidy(() => w.assign(tf.tensor1d([3, 3])));
    es.update(3, { "recall@20": 0.4 }, [w]);
    expect(es.restoreBestWeights([w])).toBe(true);
    expect(Array.from(w.dataSync())).toEqual([2, 2]);
    es.dispose();
    expect(tf.memory().numTensors).toBe(base);
    w.dispose();
  });

  it("a missing metric is a located error listing the available ones", () => {
    const es = new EarlyStopping({ metric: "ndcg@10" }, "/train/earlyStopping");
    try {
      es.update(1, { "ndcg@20": 0.1, "recall@20": 0.2 });
      expect.unreachable();
    } catch (e) {
      const issue = (e as RecblocksError).issues[0]!;
      expect(issue).toMatchObject({ code: "unknown_metric", path: "/train/earlyStopping/metric" });
      expect(issue.hint).toContain("ndcg@20, recall@20");
    }
    expect(() => new EarlyStopping({ metric: "x", patience: -1 })).toThrow(RecblocksError);
  });
});
