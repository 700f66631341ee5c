import { type Attrs, type Info, type Inputs, prod, scoped, stockKernel } from "./scope";

// ---------------------------------------------------------------------------------------------
// Tile: out viewed as [r0, d0, r1, d1, ...] is x viewed as [1, d0, 1, d1, ...] broadcast; a
// broadcasting add onto zeros does it in XNNPACK.
// ---------------------------------------------------------------------------------------------
export function tile(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x } = args.inputs as { x: Info };
  const reps = args.attrs.reps as number[];
  if (x.dtype !== "float32") return stockKernel("Tile").kernelFunc(args as never) as Info;
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  // Collapse to the dims that matter: drop r=1 or d=1 halves and merge neighbours of one kind.
  const xView: number[] = [];
  const target: number[] = [];
  const push = (xd: number, td: number): void => {
    const last = xView.length - 1;
    if (last >= 0 && (xView[last] === 1) === (xd === 1)) {
      xView[last]! *= xd;
      target[last]! *= td;
    } else {
      xView.push(xd);
      target.push(td);
    }
  };
  x.shape.forEach((d, i) => {
    if (reps[i]! !== 1) push(1, reps[i]!);
    if (d !== 1) push(d, d);
  });
  if (target.length === 0 || target.length > 6 || prod(outShape) === 0) return stockKernel("Tile").kernelFunc(args as never) as Info;
  return scoped(args.backend, (s) => {
    const xv = s.reshape(x, xView);
    const zeros = s.run("Fill", {}, { shape: target, value: 0, dtype: "float32" });
    const sum = s.run("Add", { a: zeros, b: xv });
    return s.reshape(sum, outShape);
  });
}
