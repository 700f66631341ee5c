/**
 * Test-only: a flat-loop cpu `Conv2DBackpropFilter` for NHWC. tfjs-backend-cpu 4.22's kernel reads
 * every element through `TensorBuffer.get(...)` and takes ~2 s for a 64×64×8→8 3×3 batch of 4, which
 * would make a training step of even the tiny model ~10 s. The result is checked against the stock
 * kernel in model.test.ts. (The backend folder is the right home for such a kernel in the library.)
 */
import * as tf from "@tensorflow/tfjs";

let stock: tf.KernelConfig | undefined;

/** Registers the fast kernel on the cpu backend (idempotent); returns a function that restores the stock one. */
export function useFastCpuConvFilterGrad(): () => void {
  if (!stock) stock = tf.getKernel("Conv2DBackpropFilter", "cpu");
  if (!stock) throw new Error("no cpu Conv2DBackpropFilter kernel registered");
  const original = stock;
  tf.unregisterKernel("Conv2DBackpropFilter", "cpu");
  tf.registerKernel({
    kernelName: "Conv2DBackpropFilter",
    backendName: "cpu",
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as {
        inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
        backend: {
          data: { get(id: tf.DataId): { values: Float32Array } };
          makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo;
        };
        attrs: {
          strides: [number, number] | number;
          pad: "same" | "valid" | number;
          dataFormat: "NHWC" | "NCHW";
          dimRoundingMode?: "floor" | "round" | "ceil";
          filterShape: [number, number, number, number];
        };
      };
      const { x, dy } = inputs;
      if (attrs.dataFormat === "NCHW") return (original.kernelFunc as (a: unknown) => tf.TensorInfo)(args);
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        attrs.filterShape,
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
      );
      const {
        batchSize: B,
        inHeight: H,
        inWidth: W,
        inChannels: Ci,
        outHeight: OH,
        outWidth: OW,
        outChannels: Co,
        filterHeight: FH,
        filterWidth: FW,
        strideHeight: sh,
        strideWidth: sw,
      } = info;
      const top = info.padInfo.top;
      const left = info.padInfo.left;
      const xv = backend.data.get(x.dataId).values;
      const dyv = backend.data.get(dy.dataId).values;
      const dw = new Float32Array(FH * FW * Ci * Co);
      const acc = new Float64Array(Co);
      for (let fr = 0; fr < FH; fr++) {
        for (let fc = 0; fc < FW; fc++) {
          for (let ci = 0; ci < Ci; ci++) {
            acc.fill(0);
            for (let b = 0; b < B; b++) {
              for (let yr = 0; yr < OH; yr++) {
                const xr = yr * sh + fr - top;
                if (xr < 0 || xr >= H) continue;
                for (let yc = 0; yc < OW; yc++) {
                  const xc = yc * sw + fc - left;
                  if (xc < 0 || xc >= W) continue;
                  const xval = xv[((b * H + xr) * W + xc) * Ci + ci] as number;
                  if (xval === 0) continue;
                  const dyOff = ((b * OH + yr) * OW + yc) * Co;
                  for (let co = 0; co < Co; co++) acc[co] = (acc[co] as number) + xval * (dyv[dyOff + co] as number);
                }
              }
            }
            const off = ((fr * FW + fc) * Ci + ci) * Co;
            for (let co = 0; co < Co; co++) dw[off + co] = acc[co] as number;
          }
        }
      }
      return backend.makeTensorInfo([FH, FW, Ci, Co], "float32", dw);
    },
  });
  return () => {
    tf.unregisterKernel("Conv2DBackpropFilter", "cpu");
    tf.registerKernel(original);
  };
}
