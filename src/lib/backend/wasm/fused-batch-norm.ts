import { type Attrs, type Info, type Inputs, prod, scoped, stockKernel } from "./scope";
import { WIDE_ROW } from "./wide-broadcast";

// ---------------------------------------------------------------------------------------------
// FusedBatchNorm (forward) with per-channel statistics: ((x − mean) · s) + offset with
// s = scale / sqrt(variance + ε), as three wide-row XNNPACK ops instead of the scalar C++ loop.
// ---------------------------------------------------------------------------------------------
export function fusedBatchNorm(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x, mean, variance, offset, scale } = args.inputs as Record<string, Info | undefined> as {
    x: Info;
    mean: Info;
    variance: Info;
    offset?: Info;
    scale?: Info;
  };
  const eps = Number(args.attrs.varianceEpsilon ?? 0.001);
  const C = x.shape[x.shape.length - 1] ?? 1;
  const perChannel = (t: Info | undefined): boolean =>
    t === undefined || (t.dtype === "float32" && (prod(t.shape) === 1 || (prod(t.shape) === C && t.shape[t.shape.length - 1] === C)));
  const stockFn = stockKernel("FusedBatchNorm").kernelFunc;
  if (x.dtype !== "float32" || x.shape.length < 2 || ![mean, variance, offset, scale].every(perChannel) || prod(x.shape) < 4 * WIDE_ROW) {
    return stockFn(args as never) as Info;
  }
  return scoped(args.backend, (s) => {
    const negMean = s.alloc([C]);
    const mul = s.alloc([C]);
    const add = s.alloc([C]);
    const heap = s.heap32();
    const at = (t: Info | undefined, d: number, dflt: number): number => {
      if (!t) return dflt;
      return heap[s.offset32(t) + (prod(t.shape) === 1 ? 0 : d)]!;
    };
    for (let d = 0; d < C; d++) {
      heap[s.offset32(negMean) + d] = -at(mean, d, 0);
      heap[s.offset32(mul) + d] = at(scale, d, 1) / Math.sqrt(at(variance, d, 0) + eps);
      heap[s.offset32(add) + d] = at(offset, d, 0);
    }
    const centred = s.run("Add", { a: x, b: negMean });
    const scaled = s.run("Multiply", { a: centred, b: mul });
    return s.run("Add", { a: scaled, b: add });
  });
}
