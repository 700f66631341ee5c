import * as tf from "@tensorflow/tfjs";
import { type Attrs, type Info, type Inputs, prod, scoped, stockKernel } from "./scope";

// ---------------------------------------------------------------------------------------------
// Sum and Mean over leading axes (the batch-norm reductions over N, H, W of NHWC): one XNNPACK
// average pooling, instead of a full transpose followed by a scalar loop.
// ---------------------------------------------------------------------------------------------
/**
 * The most channels {@link reduceLeading} hands to XNNPACK's average pooling. Its multipass kernel
 * (windows of more than 9) keeps a row of channels on the wasm stack; past about 16,000 channels
 * it overflows (a hang, or "memory access out of bounds"), so wider rows go to the stock kernel.
 */
const MAX_POOL_CHANNELS = 8192;

function reduceLeading(name: "Sum" | "Mean", args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x } = args.inputs as { x: Info };
  const stockFn = stockKernel(name).kernelFunc;
  if (x.dtype !== "float32" || x.shape.length < 2) return stockFn(args as never) as Info;
  const axes = tf.util.parseAxisParam(args.attrs.axis as number | number[], x.shape).sort((p, q) => p - q);
  const leading = axes.every((ax, i) => ax === i);
  if (!leading || axes.length === 0 || axes.length === x.shape.length) return stockFn(args as never) as Info;
  const M = prod(x.shape.slice(0, axes.length));
  const rest = x.shape.slice(axes.length);
  const C = prod(rest);
  if (M * C < 4096 || C > MAX_POOL_CHANNELS) return stockFn(args as never) as Info;
  const outShape = args.attrs.keepDims ? [...axes.map(() => 1), ...rest] : rest;
  return scoped(args.backend, (s) => {
    // XNNPACK average pooling over one [M, 1] window of x viewed as [1, M, 1, C].
    const pooled = s.run("AvgPool", { x: s.reshape(x, [1, M, 1, C]) }, { filterSize: [M, 1], strides: [M, 1], pad: "valid" });
    const out =
      name === "Mean" ? pooled : s.run("Multiply", { a: pooled, b: s.run("Fill", {}, { shape: [1], value: M, dtype: "float32" }) });
    return s.reshape(out, outShape);
  });
}

export const sum = (args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info => reduceLeading("Sum", args);
export const mean = (args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info => reduceLeading("Mean", args);
