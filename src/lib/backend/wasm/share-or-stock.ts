import { type Attrs, type Info, type Inputs, stockKernel, type WasmBackendLike } from "./scope";

// ---------------------------------------------------------------------------------------------
// Identity and same-dtype Cast copy the whole tensor on wasm; gradients call them a lot
// (`cast(x, "float32")` on float32 inputs). Tensors are immutable, so share the data as the cpu
// backend does.
// ---------------------------------------------------------------------------------------------
export function shareOrStock(name: "Identity" | "Cast"): (args: { inputs: Inputs; backend: unknown; attrs: Attrs }) => Info {
  return (args) => {
    const { x } = args.inputs as { x: Info };
    const same = name === "Identity" || args.attrs.dtype === x.dtype;
    if (!same || x.dtype === "string") return stockKernel(name).kernelFunc(args as never) as Info;
    (args.backend as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}
