/**
 * Training progress: on a TTY a single redrawn line with a bar (epoch, batch/total, loss,
 * examples/s, ETA); elsewhere plain log lines every N batches and/or every S seconds.
 * Numbers only: the caller reads the loss back (so the reporter never forces a GPU sync itself).
 */

/** What the reporter writes to (process.stderr by default; a fake in tests). */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Draw a redrawn bar (default: stream.isTTY). */
  tty?: boolean;
  /** Total number of epochs, shown as "epoch 2/10". */
  epochs?: number;
  /** Plain mode: a line every this many batches (0 = off). Default 0. */
  everyBatches?: number;
  /** Plain mode: a line when this many seconds passed since the last one (0 = off). Default 10. */
  everySeconds?: number;
  /** TTY mode: redraw at most every this many milliseconds. Default 100. */
  minRedrawMs?: number;
  /** Clock in milliseconds (default performance.now). */
  now?: () => number;
  /** Print nothing. */
  quiet?: boolean;
}

export interface BatchInfo {
  /** Loss of this batch (averaged into the epoch's running loss, weighted by examples when given). */
  loss?: number;
  /** Examples (or targets) in this batch, for examples/s. */
  examples?: number;
}

/** "42s", "3m05s", "1h02m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function formatRate(x: number): string {
  if (!Number.isFinite(x)) return "?";
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1);
}

function formatLoss(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : String(x);
}

export class ProgressReporter {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly opts: Required<Omit<ProgressOptions, "stream" | "tty" | "epochs">> & { epochs?: number };
  private epoch = 0;
  private total?: number;
  private batch = 0;
  private examples = 0;
  private lossSum = 0;
  private lossWeight = 0;
  private epochStart = 0;
  private lastDraw = -Infinity;
  private lastLine = -Infinity;
  private barShown = false;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.opts = {
      everyBatches: options.everyBatches ?? 0,
      everySeconds: options.everySeconds ?? 10,
      minRedrawMs: options.minRedrawMs ?? 100,
      now: options.now ?? (() => performance.now()),
      quiet: options.quiet ?? false,
      epochs: options.epochs,
    };
  }

  /** Starts epoch `epoch` (1-based) of `totalBatches` batches (unknown: no bar, no ETA). */
  startEpoch(epoch: number, totalBatches?: number): void {
    this.epoch = epoch;
    this.total = totalBatches;
    this.batch = 0;
    this.examples = 0;
    this.lossSum = 0;
    this.lossWeight = 0;
    this.epochStart = this.opts.now();
    this.lastDraw = -Infinity;
    this.lastLine = this.epochStart;
  }

  /** Records that `batch` batches (1-based count) of this epoch are done. */
  update(batch: number, info: BatchInfo = {}): void {
    const done = batch - this.batch;
    this.batch = batch;
    const n = info.examples ?? 0;
    this.examples += n;
    if (info.loss !== undefined) {
      const w = n > 0 ? n : Math.max(1, done);
      this.lossSum += info.loss * w;
      this.lossWeight += w;
    }
    if (this.opts.quiet) return;
    const now = this.opts.now();
    if (this.tty) {
      const last = this.total !== undefined && batch >= this.total;
      if (last || now - this.lastDraw >= this.opts.minRedrawMs) {
        this.lastDraw = now;
        this.draw(now);
      }
      return;
    }
    const byBatch = this.opts.everyBatches > 0 && batch % this.opts.everyBatches === 0;
    const byTime = this.opts.everySeconds > 0 && now - this.lastLine >= this.opts.everySeconds * 1000;
    if (byBatch || byTime) {
      this.lastLine = now;
      this.stream.write(this.statusLine(now, false) + "\n");
    }
  }

  /** The epoch's mean loss so far (NaN if none reported). */
  get meanLoss(): number {
    return this.lossWeight > 0 ? this.lossSum / this.lossWeight : NaN;
  }

  /** Examples per second so far in this epoch. */
  examplesPerSecond(now = this.opts.now()): number {
    const dt = (now - this.epochStart) / 1000;
    return dt > 0 ? this.examples / dt : NaN;
  }

  /** Ends the epoch with one summary line (time, mean loss, examples/s, then `metrics` as key value). */
  endEpoch(metrics: Record<string, number> = {}): void {
    if (this.opts.quiet) return;
    const now = this.opts.now();
    const parts = [`${this.epochLabel()} done in ${formatDuration((now - this.epochStart) / 1000)}`];
    if (this.lossWeight > 0) parts.push(`loss ${formatLoss(this.meanLoss)}`);
    if (this.examples > 0) parts.push(`${formatRate(this.examplesPerSecond(now))} ex/s`);
    for (const [k, v] of Object.entries(metrics)) parts.push(`${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    this.clearBar();
    this.stream.write(parts.join("  ") + "\n");
  }

  /** Prints a message on its own line (on a TTY the bar is cleared first and redrawn after). */
  log(message: string): void {
    if (this.opts.quiet) return;
    const had = this.barShown;
    this.clearBar();
    this.stream.write(message + "\n");
    if (had) this.draw(this.opts.now());
  }

  /** Leaves the terminal clean (clears a bar still shown). */
  close(): void {
    this.clearBar();
  }

  private epochLabel(): string {
    return this.opts.epochs !== undefined ? `epoch ${this.epoch}/${this.opts.epochs}` : `epoch ${this.epoch}`;
  }

  private statusLine(now: number, withBar: boolean): string {
    const parts = [this.epochLabel()];
    const elapsed = (now - this.epochStart) / 1000;
    if (this.total !== undefined) {
      let b = `batch ${this.batch}/${this.total}`;
      if (withBar) {
        const width = 20;
        const filled = Math.min(width, Math.floor((this.batch / Math.max(1, this.total)) * width));
        b += ` [${"=".repeat(filled)}${filled < width ? ">" : ""}${" ".repeat(Math.max(0, width - filled - 1))}]`;
      }
      parts.push(b);
    } else parts.push(`batch ${this.batch}`);
    if (this.lossWeight > 0) parts.push(`loss ${formatLoss(this.meanLoss)}`);
    if (this.examples > 0) parts.push(`${formatRate(this.examplesPerSecond(now))} ex/s`);
    if (this.total !== undefined && this.batch > 0 && this.batch < this.total) {
      parts.push(`ETA ${formatDuration((elapsed / this.batch) * (this.total - this.batch))}`);
    } else parts.push(formatDuration(elapsed));
    return parts.join("  ");
  }

  private draw(now: number): void {
    let line = this.statusLine(now, true);
    const cols = this.stream.columns;
    if (cols !== undefined && cols > 1 && line.length > cols - 1) line = line.slice(0, cols - 1);
    this.stream.write(`\r${line}\x1b[K`);
    this.barShown = true;
  }

  private clearBar(): void {
    if (this.tty && this.barShown) {
      this.stream.write("\r\x1b[K");
      this.barShown = false;
    }
  }
}
