// Where an onnx training step's time goes: onnxruntime's profiler over a few steps, its kernel
// times summed into groups of ops (by node name and op type, as train-graph.ts names them).

/** One group of a profiled step: milliseconds per step and share of the kernel time. */
export interface ProfileGroup {
  group: string;
  ms: number;
  share: number;
  nodes: number;
}

/** An event of onnxruntime's profile (Chrome trace format), the fields used here. */
export interface ProfileEvent {
  cat?: string;
  name?: string;
  /** µs since the session started. */
  ts?: number;
  dur?: number;
  args?: { op_name?: string };
}

/** The events after the first `skip` session runs ("model_run" spans): the profile starts at session creation, warm-ups included. */
export function afterRuns(events: readonly ProfileEvent[], skip: number): ProfileEvent[] {
  const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
  const from = runs[skip]?.ts;
  return from === undefined ? [...events] : events.filter((e) => (e.ts ?? 0) >= from);
}

/** Op groups, first match wins: [label, test on (node name, op type)]. */
const GROUPS: ReadonlyArray<[string, (node: string, op: string) => boolean]> = [
  ["weight-gradient GEMMs", (n, op) => op === "FusedMatMul" && n.includes(":dwt")],
  ["input-gradient convs", (n, op) => op === "Conv" && n.includes(":dx")],
  ["forward convs", (_, op) => op === "Conv"],
  [
    "weight-gradient tap copies (Pad, Slice, row Gather)",
    (n, op) => ["Slice", "Pad", "Gather"].includes(op) && [":tap", ":xpad", ":dycol"].some((part) => n.includes(part)),
  ],
  ["kernel layouts (Gather)", (n, op) => op === "Gather" && n.includes(":kernel")],
  ["NCHWc reorders of activations", (_, op) => op === "ReorderInput" || op === "ReorderOutput"],
  ["batch norm in training mode", (n) => /\/(input_)?bn\d*[:#/]/.test(n)],
  ["max-pool with indices, MaxUnpool, the pooled ReLU", (n, op) => op === "MaxPool" || op === "MaxUnpool" || /\/pool[:#]/.test(n)],
  ["ReLU and its gradient", (n) => /\/relu\d*[:#]/.test(n)],
  ["Adam and moving statistics", (n) => n.startsWith("adam") || n.startsWith("stats")],
  ["reshapes, transposes, concat, slices", (_, op) => ["Reshape", "Transpose", "Concat", "Split", "Slice", "Identity"].includes(op)],
];
const OTHER = "heads, loss, dense layers, other";

/** The group of a node. */
export function profileGroupOf(node: string, op: string): string {
  return GROUPS.find(([, test]) => test(node, op))?.[0] ?? OTHER;
}

/** Sums a profile's kernel times into groups, slowest first; `runs` session runs were profiled. */
export function groupProfile(events: readonly ProfileEvent[], runs: number): { groups: ProfileGroup[]; totalMs: number } {
  const ms = new Map<string, number>();
  const nodes = new Map<string, Set<string>>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== "Node" || !e.name?.endsWith("_kernel_time")) continue;
    const node = e.name.slice(0, -"_kernel_time".length);
    const group = profileGroupOf(node, e.args?.op_name ?? "");
    const us = e.dur ?? 0;
    ms.set(group, (ms.get(group) ?? 0) + us);
    const set = nodes.get(group) ?? new Set<string>();
    set.add(node);
    nodes.set(group, set);
    total += us;
  }
  const perStep = (us: number) => us / runs / 1000;
  const groups = [...ms]
    .map(([group, us]) => ({ group, ms: perStep(us), share: total ? us / total : 0, nodes: nodes.get(group)?.size ?? 0 }))
    .sort((a, b) => b.ms - a.ms);
  return { groups, totalMs: perStep(total) };
}
