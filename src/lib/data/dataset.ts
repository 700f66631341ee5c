import { ConfigError } from "../util";

/**
 * A small lazy dataset in the spirit of tf.data: a recipe for an async stream, transformed by
 * chaining (`map`, `filter`, `batch`, `prefetch`, `take`, ...) and read with `for await`. Each
 * iteration starts the stream afresh from its source factory, so iterating twice gives the same
 * stream (for a deterministic source), and no transformation changes what it reads from. Nothing
 * runs until it is iterated.
 */
export class Dataset<T> implements AsyncIterable<T> {
  /**
   * @param size The number of elements, as tfjs-data's `size`: a count when it is known without
   * iterating, `Infinity` for an endless stream, null when unknown (e.g. after `filter`).
   */
  private constructor(
    private readonly source: () => AsyncIterator<T>,
    readonly size: number | null = null,
  ) {}

  /**
   * A dataset over an array, an iterable, an async iterable, or a function returning one of them.
   * Its `size` is an array's length, else `size` when given, else unknown.
   */
  static from<T>(src: Iterable<T> | AsyncIterable<T> | (() => Iterable<T> | AsyncIterable<T>), size: number | null = null): Dataset<T> {
    return new Dataset<T>(() => {
      const it = typeof src === "function" ? src() : src;
      if (Symbol.asyncIterator in it) return (it as AsyncIterable<T>)[Symbol.asyncIterator]();
      const sync = (it as Iterable<T>)[Symbol.iterator]();
      return {
        next: async () => sync.next(),
        return: async (v?: unknown) => {
          sync.return?.(v);
          return { done: true, value: undefined };
        },
      } as AsyncIterator<T>;
    }, Array.isArray(src) ? src.length : size);
  }

  /** A dataset from an async generator function (called again for each iteration), of `size` elements when known. */
  static generate<T>(fn: () => AsyncGenerator<T> | Generator<T>, size: number | null = null): Dataset<T> {
    return Dataset.from(fn as () => AsyncIterable<T> | Iterable<T>, size);
  }

  /** Integers [start, end). */
  static range(start: number, end: number): Dataset<number> {
    return Dataset.generate(function* () {
      for (let i = start; i < end; i++) yield i;
    }, Math.max(0, end - start));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.source();
  }

  /** Applies `fn` to each element, one at a time, in order. */
  map<U>(fn: (x: T, i: number) => U | Promise<U>): Dataset<U> {
    const self = this;
    return Dataset.generate(async function* () {
      let i = 0;
      for await (const x of self) yield await fn(x, i++);
    }, this.size);
  }

  /**
   * Applies an async `fn` with up to `concurrency` calls in flight, keeping the input order.
   */
  mapAsync<U>(fn: (x: T, i: number) => Promise<U>, concurrency: number): Dataset<U> {
    checkPositiveInt(concurrency, "concurrency");
    const self = this;
    return Dataset.generate(async function* () {
      const it = self[Symbol.asyncIterator]();
      const inFlight: Array<Promise<{ value: U }>> = [];
      let i = 0;
      let done = false;
      try {
        while (true) {
          while (!done && inFlight.length < concurrency) {
            const r = await it.next();
            if (r.done) done = true;
            else {
              const p = fn(r.value, i++).then((value) => ({ value }));
              p.catch(() => {}); // observed when awaited below; avoid an unhandled rejection meanwhile
              inFlight.push(p);
            }
          }
          const head = inFlight.shift();
          if (!head) return;
          yield (await head).value;
        }
      } finally {
        await it.return?.();
      }
    }, this.size);
  }

  /** Keeps the elements for which `pred` is true. */
  filter(pred: (x: T) => boolean | Promise<boolean>): Dataset<T> {
    const self = this;
    return Dataset.generate(async function* () {
      for await (const x of self) if (await pred(x)) yield x;
    });
  }

  /** Groups consecutive elements into arrays of `size` (the last may be smaller unless `dropRemainder`). */
  batch(size: number, opts: { dropRemainder?: boolean } = {}): Dataset<T[]> {
    checkPositiveInt(size, "batch size");
    const self = this;
    return Dataset.generate(async function* () {
      let buf: T[] = [];
      for await (const x of self) {
        buf.push(x);
        if (buf.length === size) {
          yield buf;
          buf = [];
        }
      }
      if (buf.length > 0 && !opts.dropRemainder) yield buf;
    }, this.size === null ? null : opts.dropRemainder ? Math.floor(this.size / size) : Math.ceil(this.size / size));
  }

  /** The first `n` elements. */
  take(n: number): Dataset<T> {
    const self = this;
    return Dataset.generate(async function* () {
      if (n <= 0) return;
      let i = 0;
      for await (const x of self) {
        yield x;
        if (++i >= n) return;
      }
    }, this.size === null ? null : Math.max(0, Math.min(n, this.size)));
  }

  /** All but the first `n` elements. */
  skip(n: number): Dataset<T> {
    const self = this;
    return Dataset.generate(async function* () {
      let i = 0;
      for await (const x of self) if (i++ >= n) yield x;
    }, this.size === null ? null : Math.max(0, this.size - n));
  }

  /**
   * Reads up to `n` elements ahead in the background, so producing the next elements overlaps
   * with the consumer's work. Errors reach the consumer at the element where they happened.
   */
  prefetch(n: number): Dataset<T> {
    checkPositiveInt(n, "prefetch");
    return new Dataset<T>(() => {
      const it = this[Symbol.asyncIterator]();
      const buffer: Array<Promise<IteratorResult<T>>> = [];
      let finished = false;
      let chain: Promise<unknown> = Promise.resolve();
      const pull = () => {
        // Calls to it.next() are chained: an async generator must not be re-entered.
        const p = chain.then(() => (finished ? ({ done: true, value: undefined } as IteratorResult<T>) : it.next()));
        chain = p.then(
          (r) => {
            if (r.done) finished = true;
          },
          () => {
            finished = true;
          },
        );
        p.catch(() => {});
        buffer.push(p);
      };
      const fill = () => {
        while (buffer.length < n && !finished) pull();
      };
      return {
        next: async () => {
          fill();
          const head = buffer.shift() ?? Promise.resolve({ done: true, value: undefined } as IteratorResult<T>);
          const r = await head;
          if (!r.done) fill();
          return r;
        },
        return: async (v?: unknown) => {
          finished = true;
          buffer.length = 0;
          await chain.catch(() => {});
          await it.return?.(v);
          return { done: true, value: undefined } as IteratorResult<T>;
        },
      };
    }, this.size);
  }

  /** Calls `fn` on each element. */
  async forEach(fn: (x: T, i: number) => void | Promise<void>): Promise<void> {
    let i = 0;
    for await (const x of this) await fn(x, i++);
  }

  /** Collects every element (mind the memory). */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const x of this) out.push(x);
    return out;
  }
}

function checkPositiveInt(v: number, key: string): void {
  if (!(Number.isInteger(v) && v >= 1)) throw new ConfigError(`must be an integer >= 1, got ${v}`, { subject: key });
}
