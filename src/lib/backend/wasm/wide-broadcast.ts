import * as tf from "@tensorflow/tfjs";
import { type Attrs, type Info, type Inputs, prod, scoped, stockKernel } from "./scope";

// ---------------------------------------------------------------------------------------------
// Broadcasting binary ops such as x[N,H,W,C] · v[C] (everywhere in batch norm): XNNPACK runs one
// microkernel call per innermost row, so with C = 16 it spends its time in call overhead. Tile the
// small operand k times (a few KiB) and view the big one as [M/k, k·T]: the same op on rows of
// ~2048 values.
// ---------------------------------------------------------------------------------------------
/** Rows of about this many values per XNNPACK call (see above); also the batch-norm kernel's threshold. */
export const WIDE_ROW = 2048;

export function wideBroadcast(name: string): (args: { inputs: Inputs; backend: unknown; attrs: Attrs }) => Info {
  return (args) => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    const stockFn = stockKernel(name).kernelFunc;
    if (a.dtype !== "float32" || b.dtype !== "float32") return stockFn(args as never) as Info;
    const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const sizeA = prod(a.shape);
    const sizeB = prod(b.shape);
    const total = prod(out);
    if (total < 4 * WIDE_ROW) return stockFn(args as never) as Info;
    const bigIsA = sizeA === total && sizeB < total;
    const bigIsB = sizeB === total && sizeA < total;
    if (!bigIsA && !bigIsB) return stockFn(args as never) as Info;
    const small = bigIsA ? b : a;
    // The small operand must be a trailing block of the output: [1, …, 1, out[j], …, out[r-1]].
    const r = out.length;
    const sh = [...new Array<number>(r - small.shape.length).fill(1), ...small.shape];
    let j = r;
    while (j > 0 && sh[j - 1] === out[j - 1]) j--;
    if (sh.slice(0, j).some((d) => d !== 1)) return stockFn(args as never) as Info;
    const T = prod(out.slice(j));
    const M = total / T;
    if (T >= WIDE_ROW / 2 || M < 2) return stockFn(args as never) as Info;
    let k = Math.min(M, Math.floor(WIDE_ROW / T));
    while (k > 1 && M % k !== 0) k--;
    if (k < 2) return stockFn(args as never) as Info;
    return scoped(args.backend, (s) => {
      const wide = s.alloc([k * T]);
      const heap = s.heap32();
      const src = s.offset32(small);
      const dst = s.offset32(wide);
      for (let i = 0; i < k; i++) heap.copyWithin(dst + i * T, src, src + T);
      const big2 = s.reshape(bigIsA ? a : b, [M / k, k * T]);
      const res = s.runStock(name, bigIsA ? { a: big2, b: wide } : { a: wide, b: big2 });
      return s.reshape(res, out);
    });
  };
}

/** Binary kernels that get {@link wideBroadcast}. */
export const WIDE_BINARY = ["Multiply", "Add", "Sub", "RealDiv", "SquaredDifference"] as const;
