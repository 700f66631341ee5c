import * as tf from "@tensorflow/tfjs";
import { type Attrs, channelsLast, type Info, type Inputs, scoped, stockKernel, stride2 } from "./scope";

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput: dx = valid correlation of the (zero-dilated, padded) dy with the filter
// flipped in space and transposed to [kh, kw, Co, C]: one XNNPACK convolution.
// ---------------------------------------------------------------------------------------------
export function conv2DBackpropInput(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = args.attrs;
  if (!channelsLast(attrs) || dy.dtype !== "float32") {
    return stockKernel("Conv2DBackpropInput").kernelFunc(args as never) as Info;
  }
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    stride2(attrs.strides),
    1,
    attrs.pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
  );
  const [N, H, W] = inputShape;
  const [kh, kw, C, Co] = filter.shape as [number, number, number, number];
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const Ho = info.outHeight;
  const Wo = info.outWidth;
  return scoped(args.backend, (s) => {
    let d = dy;
    if (sh > 1 || sw > 1) {
      // Zero-dilate: [N,Ho,1,Wo,1,Co] padded to [N,Ho,sh,Wo,sw,Co] -> [N, Ho·sh, Wo·sw, Co].
      const d6 = s.reshape(d, [N, Ho, 1, Wo, 1, Co]);
      const p6 = s.pad(d6, [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ]);
      d = s.reshape(p6, [N, Ho * sh, Wo * sw, Co]);
    }
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = H + kh - 1 - top - d.shape[1]!;
    const right = W + kw - 1 - left - d.shape[2]!;
    // Non-negative pads go to XNNPACK's implicit padding; otherwise pad (and crop) explicitly.
    const implicit = top >= 0 && left >= 0 && bottom >= 0 && right >= 0;
    const ext = implicit
      ? d
      : s.pad(d, [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ]);
    const convPad = implicit
      ? [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ]
      : "valid";
    // wT[kh-1-a, kw-1-b, o, c] = filter[a, b, c, o]: a small tensor, rearranged in JS.
    const wT = s.alloc([kh, kw, Co, C]);
    const heap = s.heap32();
    const src = s.offset32(filter);
    const dst = s.offset32(wT);
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const from = src + (a * kw + b) * C * Co;
        const to = dst + ((kh - 1 - a) * kw + (kw - 1 - b)) * C * Co;
        for (let c = 0; c < C; c++) for (let o = 0; o < Co; o++) heap[to + o * C + c] = heap[from + c * Co + o]!;
      }
    }
    const out = s.run("Conv2D", { x: ext, filter: wT }, { strides: [1, 1], pad: convPad, dataFormat: "NHWC", dilations: [1, 1] });
    if (out.shape[3] !== C) throw new Error("internal: Conv2DBackpropInput channel mismatch");
    return out;
  });
}
