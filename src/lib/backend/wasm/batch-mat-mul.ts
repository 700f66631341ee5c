import * as tf from "@tensorflow/tfjs";
import { type Attrs, type Info, type Inputs, prod, scoped, stockKernel } from "./scope";

// ---------------------------------------------------------------------------------------------
// BatchMatMul: the wasm backend uses XNNPACK only for [1,m,k]·[1,k,n] without transposes and a
// scalar triple loop otherwise. Transpose explicitly (XNNPACK) and split batches into GEMMs.
// ---------------------------------------------------------------------------------------------
export function batchMatMul(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { a, b } = args.inputs as { a: Info; b: Info };
  const transposeA = Boolean(args.attrs.transposeA);
  const transposeB = Boolean(args.attrs.transposeB);
  const stockFn = stockKernel("BatchMatMul").kernelFunc;
  if (a.dtype !== "float32" || b.dtype !== "float32") return stockFn(args as never) as Info;
  const ar = a.shape.length;
  const br = b.shape.length;
  const batchA = prod(a.shape.slice(0, -2));
  const batchB = prod(b.shape.slice(0, -2));
  const m = transposeA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const k = transposeA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const n = transposeB ? b.shape[br - 2]! : b.shape[br - 1]!;
  const batch = Math.max(batchA, batchB);
  if (batch === 1 && !transposeA && !transposeB) return stockFn(args as never) as Info;
  // Small products: the scalar loop beats transposes plus per-batch operator creation.
  if (m * n * k < 4096 || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return stockFn(args as never) as Info;
  const outShape = [...tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  return scoped(args.backend, (s) => {
    let a3 = s.reshape(a, [batchA, transposeA ? k : m, transposeA ? m : k]);
    let b3 = s.reshape(b, [batchB, transposeB ? n : k, transposeB ? k : n]);
    if (transposeA) a3 = s.run("Transpose", { x: a3 }, { perm: [0, 2, 1] });
    if (transposeB) b3 = s.run("Transpose", { x: b3 }, { perm: [0, 2, 1] });
    const plain = { transposeA: false, transposeB: false };
    if (batch === 1) return s.reshape(s.run("BatchMatMul", { a: a3, b: b3 }, plain), outShape);
    const parts: Info[] = [];
    for (let i = 0; i < batch; i++) {
      const ai = batchA === 1 ? a3 : s.slice(a3, [i, 0, 0], [1, m, k]);
      const bi = batchB === 1 ? b3 : s.slice(b3, [i, 0, 0], [1, k, n]);
      parts.push(s.run("BatchMatMul", { a: ai, b: bi }, plain));
    }
    return s.reshape(s.run("Concat", parts, { axis: 0 }), outShape);
  });
}
