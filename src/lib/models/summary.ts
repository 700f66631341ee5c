/**
 * Model summaries from the graph alone (no weights): per layer output shape, parameters and FLOPs
 * per sample.
 *
 * FLOP convention: a multiply-add counts as 2 (conv, dense, dot products); a dense bias add, a BN
 * (inference, folded to one scale and shift: 2 per element), a ReLU and each max comparison count 1 per
 * element. Training costs roughly 3× the forward FLOPs.
 */
import type { L3NetConfig, L3NetConfigInput, L3PresetName } from "./config";
import { resolveL3Config } from "./config";
import { buildL3Graph, type GraphNode, type GraphPart, type L3Graph } from "./graph";

/** One row of a summary. */
export interface SummaryRow {
  name: string;
  op: GraphNode["op"];
  part: GraphPart;
  /** Per-sample output shape (no batch axis). */
  outputShape: number[];
  /** All parameters of the layer (BN: γ, β, moving mean and variance). */
  params: number;
  /** Forward FLOPs per sample. */
  flops: number;
  /** True for probe-feature nodes off the main path (excluded from totals). */
  optional?: boolean;
}

/** Totals of a summary (main path only). */
export interface SummaryTotals {
  params: number;
  trainableParams: number;
  flops: number;
  byPart: Record<GraphPart, { params: number; flops: number }>;
}

/** A model summary. */
export interface ModelSummary {
  name: string;
  fusion: string;
  rows: SummaryRow[];
  totals: SummaryTotals;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function nodeFlops(node: GraphNode, inShape: (i: number) => number[]): number {
  const out = prod(node.shape);
  switch (node.op) {
    case "input":
    case "concat":
      return 0;
    case "affine":
    case "batchNorm":
      return 2 * out;
    case "relu":
      return out;
    case "conv2d": {
      const cin = inShape(0).at(-1) as number;
      return 2 * node.kernelSize * node.kernelSize * cin * out;
    }
    case "maxPool":
      return out * (node.size * node.size - 1);
    case "globalMaxPool":
    case "gridMaxPool":
      return prod(inShape(0));
    case "dense": {
      const cin = inShape(0).at(-1) as number;
      return out * (2 * cin + 1);
    }
    case "l2Normalize":
      return 3 * out;
    case "euclideanDistance":
      return 3 * prod(inShape(0));
    case "dot":
    case "locationDot":
      return 2 * prod(inShape(0));
    case "softmax":
      return 3 * out;
  }
}

/** The summary of a preset, config or built graph. `includeProbes` adds the grid-pool probe rows. */
export function modelSummary(
  config: L3PresetName | L3NetConfig | L3NetConfigInput | L3Graph,
  opts: { includeProbes?: boolean } = {},
): ModelSummary {
  const graph = typeof config === "object" && "nodes" in config ? config : buildL3Graph(resolveL3Config(config));
  const shapes = new Map(graph.nodes.map((n) => [n.name, n.shape]));
  const paramSize = new Map(graph.params.map((p) => [p.name, prod(p.shape)]));
  const trainable = new Set(graph.params.filter((p) => p.trainable).map((p) => p.name));
  const rows: SummaryRow[] = [];
  const totals: SummaryTotals = {
    params: 0,
    trainableParams: 0,
    flops: 0,
    byPart: { vision: { params: 0, flops: 0 }, audio: { params: 0, flops: 0 }, fusion: { params: 0, flops: 0 } },
  };
  for (const node of graph.nodes) {
    if (node.optional && !opts.includeProbes) continue;
    const names = nodeParams(node);
    const params = names.reduce((a, n) => a + (paramSize.get(n) ?? 0), 0);
    const flops = nodeFlops(node, (i) => shapes.get(node.inputs[i] as string) ?? []);
    rows.push({
      name: node.name,
      op: node.op,
      part: node.part,
      outputShape: node.shape,
      params,
      flops,
      ...(node.optional ? { optional: true } : {}),
    });
    if (node.optional) continue;
    totals.params += params;
    totals.trainableParams += names.filter((n) => trainable.has(n)).reduce((a, n) => a + (paramSize.get(n) ?? 0), 0);
    totals.flops += flops;
    totals.byPart[node.part].params += params;
    totals.byPart[node.part].flops += flops;
  }
  return { name: graph.config.name, fusion: graph.config.fusion, rows, totals };
}

/** Parameter names used by a node. */
export function nodeParams(node: GraphNode): string[] {
  switch (node.op) {
    case "conv2d":
      return [node.kernel];
    case "batchNorm":
      return [node.gamma, node.beta, node.movingMean, node.movingVariance];
    case "dense":
      return [node.kernel, node.bias];
    default:
      return [];
  }
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** A text table of a summary (or of a preset/config), with totals per part. */
export function formatModelSummary(
  summary: ModelSummary | L3PresetName | L3NetConfig | L3NetConfigInput,
  opts: { includeProbes?: boolean } = {},
): string {
  const s = typeof summary === "object" && "rows" in summary ? summary : modelSummary(summary, opts);
  const header = ["layer", "op", "output", "params", "FLOPs"];
  const body = s.rows.map((r) => [
    r.name + (r.optional ? " (probe)" : ""),
    r.op,
    r.outputShape.join("×"),
    r.params.toLocaleString("en-US"),
    human(r.flops),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= 3 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join("  ");
  const sep = widths.map((w) => "-".repeat(w)).join("  ");
  const t = s.totals;
  const parts = (["vision", "audio", "fusion"] as const).map(
    (p) => `${p} ${t.byPart[p].params.toLocaleString("en-US")} params, ${human(t.byPart[p].flops)}FLOPs`,
  );
  return [
    `L³-Net '${s.name}' (fusion: ${s.fusion}); FLOPs per sample, forward, multiply-add = 2`,
    line(header),
    sep,
    ...body.map(line),
    sep,
    `total: ${t.params.toLocaleString("en-US")} params (${t.trainableParams.toLocaleString("en-US")} trainable), ${human(t.flops)}FLOPs per sample`,
    ...parts.map((p) => `  ${p}`),
  ].join("\n");
}
