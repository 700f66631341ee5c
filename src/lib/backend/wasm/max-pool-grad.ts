import * as tf from "@tensorflow/tfjs";
import { type Attrs, type Info, type Inputs, scoped, stockKernel, stride2 } from "./scope";

// ---------------------------------------------------------------------------------------------
// MaxPoolGrad: each window's gradient goes to its first maximum in row-major order (a value must
// be strictly greater to replace the current one), exactly as on the cpu backend. The stock wasm
// kernel takes the last maximum and loses the gradient of windows whose values are all ≤ 0. One
// pass in JS over the wasm heap, channels innermost; any window, stride, padding or dilation.
// ---------------------------------------------------------------------------------------------
export function maxPoolGrad(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { dy, input: x } = args.inputs as { dy: Info; input: Info };
  const attrs = args.attrs;
  if (x.dtype !== "float32" || dy.dtype !== "float32" || x.shape.length !== 4) {
    return stockKernel("MaxPoolGrad").kernelFunc(args as never) as Info;
  }
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    stride2(attrs.filterSize),
    stride2(attrs.strides),
    1,
    attrs.pad as "valid",
    attrs.dimRoundingMode as "floor" | undefined,
  );
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const { outHeight: Ho, outWidth: Wo, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  return scoped(args.backend, (s) => {
    const dx = s.alloc([N, H, W, C]);
    const heap = s.heap32();
    const xo = s.offset32(x);
    const dyo = s.offset32(dy);
    const dxo = s.offset32(dx);
    heap.fill(0, dxo, dxo + N * H * W * C);
    if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && dh === 1 && dw === 1 && top === 0 && left === 0 && 2 * Ho <= H && 2 * Wo <= W) {
      maxPoolGrad2x2(heap, xo, dyo, dxo, N, H, W, C, Ho, Wo);
      return dx;
    }
    const best = new Float32Array(C);
    const where = new Int32Array(C);
    for (let n = 0; n < N; n++) {
      for (let yr = 0; yr < Ho; yr++) {
        const r0 = yr * sh - top;
        for (let yc = 0; yc < Wo; yc++) {
          const c0 = yc * sw - left;
          best.fill(Number.NEGATIVE_INFINITY);
          where.fill(-1);
          for (let wr = 0; wr < fh; wr += dh) {
            const r = r0 + wr;
            if (r < 0 || r >= H) continue;
            for (let wc = 0; wc < fw; wc += dw) {
              const c = c0 + wc;
              if (c < 0 || c >= W) continue;
              const base = ((n * H + r) * W + c) * C;
              for (let d = 0; d < C; d++) {
                const v = heap[xo + base + d]!;
                if (v > best[d]!) {
                  best[d] = v;
                  where[d] = base + d;
                }
              }
            }
          }
          const g = dyo + ((n * Ho + yr) * Wo + yc) * C;
          for (let d = 0; d < C; d++) {
            const at = where[d]!;
            if (at >= 0) heap[dxo + at] += heap[g + d]!;
          }
        }
      }
    }
    return dx;
  });
}

/**
 * The L³-Net's pooling (2×2, stride 2, no padding) without the per-window bookkeeping: the same
 * first-strict-maximum rule, windows do not overlap, so each gradient is written once (dx is zeroed).
 */
function maxPoolGrad2x2(
  heap: Float32Array,
  xo: number,
  dyo: number,
  dxo: number,
  N: number,
  H: number,
  W: number,
  C: number,
  Ho: number,
  Wo: number,
): void {
  const row = W * C;
  for (let n = 0; n < N; n++) {
    for (let yr = 0; yr < Ho; yr++) {
      for (let yc = 0; yc < Wo; yc++) {
        const b00 = (n * H + 2 * yr) * row + 2 * yc * C;
        const b01 = b00 + C;
        const b10 = b00 + row;
        const b11 = b10 + C;
        const g = dyo + ((n * Ho + yr) * Wo + yc) * C;
        for (let d = 0; d < C; d++) {
          let m = Number.NEGATIVE_INFINITY;
          let at = -1;
          let v = heap[xo + b00 + d]!;
          if (v > m) {
            m = v;
            at = b00;
          }
          v = heap[xo + b01 + d]!;
          if (v > m) {
            m = v;
            at = b01;
          }
          v = heap[xo + b10 + d]!;
          if (v > m) {
            m = v;
            at = b10;
          }
          v = heap[xo + b11 + d]!;
          if (v > m) at = b11;
          if (at >= 0) heap[dxo + at + d] = heap[g + d]!;
        }
      }
    }
  }
}
