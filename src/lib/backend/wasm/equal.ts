import * as tf from "@tensorflow/tfjs";
import { type Attrs, type Info, type Inputs, prod, scoped, stockKernel } from "./scope";

// ---------------------------------------------------------------------------------------------
// Equal on 4-byte inputs (the max-pool and reduce-max gradients compare x with the broadcast max):
// the stock kernel spends ~10 ns per element on broadcast index arithmetic; a JS loop does ~1.
// ---------------------------------------------------------------------------------------------
export function equal(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { a, b } = args.inputs as { a: Info; b: Info };
  const four = (t: Info): boolean => t.dtype === "float32" || t.dtype === "int32";
  if (!four(a) || a.dtype !== b.dtype) return stockKernel("Equal").kernelFunc(args as never) as Info;
  const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const r = Math.max(1, out.length);
  const outShape = out.length === 0 ? [1] : out;
  const stridesFor = (shape: number[]): number[] => {
    const sh = [...new Array<number>(r - shape.length).fill(1), ...shape];
    const st = [...tf.util.computeStrides(sh), 1];
    return sh.map((d, i) => (d === 1 ? 0 : st[i]!));
  };
  const sa = stridesFor(a.shape);
  const sb = stridesFor(b.shape);
  return scoped(args.backend, (s) => {
    const res = s.backend.makeOutput(out, "bool");
    s.track(res);
    const w = s.backend.wasm;
    const buf = (w.wasmMemory?.buffer ?? w.HEAPU8.buffer) as ArrayBuffer;
    const view = a.dtype === "int32" ? new Int32Array(buf) : new Float32Array(buf);
    const bytes = new Uint8Array(buf);
    const ao = s.offset32(a);
    const bo = s.offset32(b);
    let o = s.backend.dataIdMap.get(res.dataId).memoryOffset;
    const last = r - 1;
    const n = outShape[last]!;
    const ia = sa[last]!;
    const ib = sb[last]!;
    const outer = outShape.slice(0, last);
    const idx = new Array<number>(last).fill(0);
    const total = prod(outShape);
    for (let done = 0; done < total; done += n) {
      let pa = ao;
      let pb = bo;
      for (let i = 0; i < last; i++) {
        pa += idx[i]! * sa[i]!;
        pb += idx[i]! * sb[i]!;
      }
      for (let j = 0; j < n; j++) {
        bytes[o++] = view[pa]! === view[pb]! ? 1 : 0;
        pa += ia;
        pb += ib;
      }
      let i = last - 1;
      while (i >= 0 && ++idx[i]! === outer[i]) idx[i--] = 0;
    }
    return res;
  });
}
