import * as tf from "@tensorflow/tfjs";
import { type Attrs, channelsLast, type Info, type Inputs, scoped, stride2 } from "./scope";

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: dW[a,b,c,o] = Σ_{n,i,j} xpad[n, i·s+a, j·s+b, c] · dy[n,i,j,o].
//
// The padded input (each of its s×s stride phases when s > 1) is transposed to X[c, q] with
// q = n·P + p running over an Hq × Wq grid per image (P = Hq·Wq), and dy is zero-padded onto the
// same grid. Kernel tap (a, b) then reads X at a fixed offset, off = (a/s)·Wq + (b/s): the
// [C, N·P] matrix starting there is a *view* of X (rows keep stride N·P; positions that run past a
// row's end meet zeros in dy). So each tap is one XNNPACK fully-connected GEMM,
// X_tap[C, N·P] · dy[N·P, Co], with no im2col copy; the packed dy is shared by all taps.
// ---------------------------------------------------------------------------------------------
/** Up to this many tap rows (kh·kw·C), the filter gradient copies them into one GEMM. */
const SMALL_TAP_ROWS = 64;

export function conv2DBackpropFilter(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs;
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (!channelsLast(attrs) || x.dtype !== "float32") {
    throw new Error("l3kit wasm Conv2DBackpropFilter supports float32 NHWC only");
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    stride2(attrs.strides),
    1,
    attrs.pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
  );
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const [kh, kw, , Co] = filterShape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const Ho = info.outHeight;
  const Wo = info.outWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const Hq = Ho + Math.floor((kh - 1) / sh);
  const Wq = Wo + Math.floor((kw - 1) / sw);
  const P = Hq * Wq;
  const K = N * P;
  // Taps read up to `slack` values past the end of X's last row (they meet zeros in dy).
  const slack = Math.floor((kh - 1) / sh) * Wq + Math.floor((kw - 1) / sw) + 1;
  return scoped(args.backend, (s) => {
    const xp = s.pad(x, [
      [0, 0],
      [top, Hq * sh - H - top],
      [left, Wq * sw - W - left],
      [0, 0],
    ]);
    // phases[ph·sw + pw]: X of that phase, [1, C·K + slack].
    const phases: Info[] = [];
    const toX = (t: Info): Info => {
      const xt = C === 1 ? t : s.run("Transpose", { x: s.reshape(t, [K, C]) }, { perm: [1, 0] });
      return s.pad(s.reshape(xt, [1, C * K]), [
        [0, 0],
        [0, slack],
      ]);
    };
    if (sh === 1 && sw === 1) phases.push(toX(xp));
    else {
      const x6 = s.reshape(xp, [N, Hq, sh, Wq, sw, C]);
      for (let ph = 0; ph < sh; ph++) {
        for (let pw = 0; pw < sw; pw++) phases.push(toX(s.slice(x6, [0, 0, ph, 0, pw, 0], [N, Hq, 1, Wq, 1, C])));
      }
    }
    const dyGrid = s.pad(dy, [
      [0, 0],
      [0, Hq - Ho],
      [0, Wq - Wo],
      [0, 0],
    ]);
    const b = s.view(dyGrid, [1, K, Co]);
    const plain = { transposeA: false, transposeB: false };
    const tapStart = (ta: number, tb: number): [Info, number] => [
      phases[(ta % sh) * sw + (tb % sw)]!,
      Math.floor(ta / sh) * Wq + Math.floor(tb / sw),
    ];
    if (kh * kw * C <= SMALL_TAP_ROWS) {
      // Few input channels (the first layer): one GEMM over all taps' rows uses the GEMM's row
      // tiles better than kh·kw GEMMs of C ≤ 3 rows; copying kh·kw·C rows is cheap.
      const a = s.alloc([1, kh * kw * C, K]);
      const heap = s.heap32();
      let dst = s.offset32(a);
      for (let ta = 0; ta < kh; ta++) {
        for (let tb = 0; tb < kw; tb++) {
          const [phase, off] = tapStart(ta, tb);
          const src = s.offset32(phase) + off;
          heap.copyWithin(dst, src, src + C * K);
          dst += C * K;
        }
      }
      return s.reshape(s.run("BatchMatMul", { a, b }, plain), [kh, kw, C, Co]);
    }
    const taps: Info[] = [];
    for (let ta = 0; ta < kh; ta++) {
      for (let tb = 0; tb < kw; tb++) {
        const [phase, off] = tapStart(ta, tb);
        taps.push(s.run("BatchMatMul", { a: s.view(phase, [1, C, K], off), b }, plain));
      }
    }
    const stacked = taps.length === 1 ? taps[0]! : s.run("Concat", taps, { axis: 0 });
    return s.reshape(stacked, [kh, kw, C, Co]);
  });
}
