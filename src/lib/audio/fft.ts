/**
 * A real-input FFT for power-of-two sizes: an iterative radix-2 complex FFT of size n/2 on the
 * even/odd-packed signal, then the standard split step. Tables (bit reversal, twiddles) are built
 * once per size and shared; all arithmetic is float64.
 */

/** A reusable real FFT of one power-of-two size (n >= 2). Not safe to share across concurrent async code mid-call (it has scratch buffers), which JS never does. */
export class RealFft {
  readonly n: number;
  private readonly m: number;
  private readonly rev: Uint32Array;
  private readonly cosT: Float64Array;
  private readonly sinT: Float64Array;
  private readonly wr: Float64Array;
  private readonly wi: Float64Array;
  private readonly zr: Float64Array;
  private readonly zi: Float64Array;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 2 || (n & (n - 1)) !== 0) throw new RangeError(`RealFft: size must be a power of two >= 2, got ${n}`);
    this.n = n;
    const m = n >> 1;
    this.m = m;
    let bits = 0;
    while (1 << bits < m) bits++;
    this.rev = new Uint32Array(m);
    for (let i = 0; i < m; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    const half = Math.max(1, m >> 1);
    this.cosT = new Float64Array(half);
    this.sinT = new Float64Array(half);
    for (let k = 0; k < half; k++) {
      this.cosT[k] = Math.cos((2 * Math.PI * k) / m);
      this.sinT[k] = Math.sin((2 * Math.PI * k) / m);
    }
    this.wr = new Float64Array(m + 1);
    this.wi = new Float64Array(m + 1);
    for (let k = 0; k <= m; k++) {
      this.wr[k] = Math.cos((2 * Math.PI * k) / n);
      this.wi[k] = -Math.sin((2 * Math.PI * k) / n);
    }
    this.zr = new Float64Array(m);
    this.zi = new Float64Array(m);
  }

  /**
   * The first n/2+1 DFT coefficients of the real signal `x` (length n):
   * X[k] = Σ x[t]·e^{−2πikt/n}, written to `re` / `im` (length ≥ n/2+1).
   */
  forward(x: ArrayLike<number>, re: Float64Array, im: Float64Array): void {
    const { m, rev, zr, zi } = this;
    if (x.length < this.n) throw new RangeError(`RealFft.forward: need ${this.n} samples, got ${x.length}`);
    for (let i = 0; i < m; i++) {
      const r = rev[i]!;
      zr[r] = x[2 * i]!;
      zi[r] = x[2 * i + 1]!;
    }
    // radix-2 butterflies on the packed complex signal (twiddle-outer loops: one table read per j)
    const cosT = this.cosT;
    const sinT = this.sinT;
    for (let size = 2; size <= m; size <<= 1) {
      const halfSize = size >> 1;
      const step = m / size;
      for (let j = 0; j < halfSize; j++) {
        const c = cosT[j * step]!;
        const s = sinT[j * step]!;
        for (let a = j; a < m; a += size) {
          const b = a + halfSize;
          const br = zr[b]!;
          const bi = zi[b]!;
          // (br + i·bi)·(c − i·s)
          const tr = br * c + bi * s;
          const ti = bi * c - br * s;
          const ar = zr[a]!;
          const ai = zi[a]!;
          zr[a] = ar + tr;
          zi[a] = ai + ti;
          zr[b] = ar - tr;
          zi[b] = ai - ti;
        }
      }
    }
    // split: X[k] = Fe[k] + W^k·Fo[k]
    for (let k = 0; k <= m; k++) {
      const a = zr[k % m]!;
      const b = zi[k % m]!;
      const c = zr[(m - k) % m]!;
      const d = zi[(m - k) % m]!;
      const feR = (a + c) / 2;
      const feI = (b - d) / 2;
      const foR = (b + d) / 2;
      const foI = (c - a) / 2;
      const wr = this.wr[k]!;
      const wi = this.wi[k]!;
      re[k] = feR + wr * foR - wi * foI;
      im[k] = feI + wr * foI + wi * foR;
    }
  }
}

const cache = new Map<number, RealFft>();

/** The shared {@link RealFft} for size n (built on first use). */
export function realFft(n: number): RealFft {
  let fft = cache.get(n);
  if (!fft) {
    fft = new RealFft(n);
    cache.set(n, fft);
  }
  return fft;
}
