import * as os from "node:os";

/**
 * A bounded pool: at most `size` tasks run at once, the rest wait in FIFO order.
 * Used to cap concurrent ffmpeg processes and parallel probes.
 */
export class Pool {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly size: number = Math.max(1, os.availableParallelism?.() ?? os.cpus().length)) {
    if (!(size >= 1)) throw new RangeError(`Pool size must be >= 1, got ${size}`);
  }

  /** Runs `task` when a slot is free; resolves or rejects with the task's result. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) {
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  /** Number of tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Number of tasks waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }
}

/**
 * Maps over items with at most `concurrency` in flight; keeps order. On the first failure no more
 * items start, and it rejects with that error once the items already running have settled (so none
 * of them is still writing when the caller handles the error).
 */
export async function mapPool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const pool = new Pool(concurrency);
  let failure: { error: unknown } | null = null;
  const settled = await Promise.allSettled(
    items.map((item, i) =>
      pool.run(async () => {
        if (failure) return undefined as R;
        try {
          return await fn(item, i);
        } catch (error) {
          failure ??= { error };
          throw error;
        }
      }),
    ),
  );
  if (failure) throw (failure as { error: unknown }).error;
  return settled.map((r) => (r as PromiseFulfilledResult<R>).value);
}

/**
 * Lets the event loop run: timers, I/O and signal handlers (SIGINT / SIGTERM). A loop whose awaits
 * all resolve at once (prefetched batches, synchronous cache reads) only ever runs microtasks and
 * would starve them; long loops await this between items.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
