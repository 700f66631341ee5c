/**
 * A small, fast, seedable PRNG (sfc32) whose whole state is four 32-bit words, so it can be
 * saved in a checkpoint and restored exactly. Everything random in l3kit draws from one of these.
 */
export interface RngState {
  /** The four 32-bit words of the generator. */
  s: [number, number, number, number];
}

/** Mixes a string or number seed into 32 bits (FNV-1a over the decimal/utf-16 text). */
export function hashSeed(seed: number | string): number {
  const text = typeof seed === "number" ? `n:${seed}` : `s:${seed}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seed with a number or a string; equal seeds give equal streams on every platform. */
  constructor(seed: number | string = 0) {
    const h = hashSeed(seed);
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = h;
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  /** Restores a generator saved with {@link Rng.state}. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    [r.a, r.b, r.c, r.d] = state.s;
    return r;
  }

  /** A copy of the internal state (JSON-serialisable). */
  state(): RngState {
    return { s: [this.a, this.b, this.c, this.d] };
  }

  /** An independent generator derived from this one's seed stream and a label. */
  fork(label: string | number): Rng {
    return new Rng(`${this.nextUint32()}:${label}`);
  }

  nextUint32(): number {
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    const t = (this.a + this.b + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) >>> 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [0, n). */
  int(n: number): number {
    if (!(n > 0)) throw new RangeError(`Rng.int: n must be > 0, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box–Muller). */
  normal(mean = 0, std = 1): number {
    let u = this.next();
    while (u <= 1e-12) u = this.next();
    const v = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Rng.pick: empty array");
    return items[this.int(items.length)] as T;
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i] as T;
      items[i] = items[j] as T;
      items[j] = t;
    }
    return items;
  }

  /** A seed for tfjs initialisers and ops that take an integer seed. */
  tfSeed(): number {
    return this.nextUint32() % 2147483647;
  }
}
