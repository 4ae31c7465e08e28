/**
 * The served model behind a reference count, so that a hot swap is atomic and safe: a request takes
 * a lease on the current model (`acquire`) and gives it back when it has answered (`release`); a swap
 * installs the new model at once (requests that start afterwards get it) and retires the old one,
 * which is disposed only when its last lease is given back. Nothing here knows about HTTP or TF.js.
 */

export interface Disposable {
  dispose(): void;
}

/** A lease on a model: use `value` until `release()` (calling it again does nothing). */
export interface Lease<T> {
  readonly value: T;
  release(): void;
}

class Counted<T extends Disposable> {
  /** The slot's own reference (while current) plus one per lease. */
  refs = 1;
  disposed = false;
  constructor(
    readonly value: T,
    private readonly onDisposed: (c: Counted<T>) => void,
    private readonly onDisposeError: (err: unknown) => void,
  ) {}

  drop(): void {
    if (this.refs <= 0) throw new Error("ModelSlot: reference count below zero");
    this.refs--;
    if (this.refs === 0 && !this.disposed) {
      this.disposed = true;
      try {
        this.value.dispose();
      } catch (err) {
        this.onDisposeError(err);
      } finally {
        this.onDisposed(this);
      }
    }
  }
}

export class ModelSlot<T extends Disposable> {
  private current: Counted<T> | null;
  /** Models swapped out whose leases are not all given back yet. */
  private readonly retired = new Set<Counted<T>>();
  private readonly waiters: (() => void)[] = [];
  private generationCount = 1;

  constructor(first: T, private readonly onDisposeError: (err: unknown) => void = () => {}) {
    this.current = this.wrap(first);
  }

  private wrap(v: T): Counted<T> {
    return new Counted(v, (c) => {
      this.retired.delete(c);
      this.settle();
    }, this.onDisposeError);
  }

  private settle(): void {
    if (this.current === null && this.retired.size === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** 1 for the first model, +1 at every swap. */
  get generation(): number {
    return this.generationCount;
  }

  /** The current model, without a lease (for reading its description; do not keep it). */
  peek(): T {
    if (!this.current) throw new Error("ModelSlot: closed");
    return this.current.value;
  }

  /** Leases on models, current or retired, not given back yet. */
  get leases(): number {
    let n = this.current ? this.current.refs - 1 : 0;
    for (const r of this.retired) n += r.refs;
    return n;
  }

  /** Models swapped out and still in use by requests that started before the swap. */
  get retiredInUse(): number {
    return this.retired.size;
  }

  acquire(): Lease<T> {
    const c = this.current;
    if (!c) throw new Error("ModelSlot: closed");
    c.refs++;
    let done = false;
    return {
      value: c.value,
      release: () => {
        if (done) return;
        done = true;
        c.drop();
      },
    };
  }

  /** Makes `next` current at once; the old model is disposed when its last lease is released. Returns the old model. */
  swap(next: T): T {
    const old = this.current;
    if (!old) {
      next.dispose();
      throw new Error("ModelSlot: closed");
    }
    this.current = this.wrap(next);
    this.generationCount++;
    this.retired.add(old);
    old.drop();
    return old.value;
  }

  /** Retires the current model; resolves when every model has been disposed (all leases released). */
  close(): Promise<void> {
    const c = this.current;
    if (c) {
      this.current = null;
      this.retired.add(c);
      c.drop();
    }
    if (this.retired.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
