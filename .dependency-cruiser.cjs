/**
 * Import rules checked by `npm run lint` (dependency-cruiser). src/lib's folders form layers, data
 * flowing one way: a folder imports only folders of lower layers (or its own layer where listed).
 * The library never imports the CLI or the experiments, and no module takes part in a cycle.
 */
const LAYERS = [
  ["util"],
  ["backend", "media", "audio", "vision"],
  ["data"],
  ["models"],
  ["train", "eval"],
  ["results"],
  ["viz"],
  ["queue"],
];

/** One rule per layer: its folders may not import any folder of a higher layer. */
const layerRules = LAYERS.slice(0, -1).map((folders, i) => ({
  name: `layer-${folders.join("-")}`,
  comment: `src/lib/{${folders.join(",")}} sits below ${LAYERS.slice(i + 1).flat().join(", ")}; data flows one way`,
  severity: "error",
  from: { path: `^src/lib/(${folders.join("|")})/` },
  to: { path: `^src/lib/(${LAYERS.slice(i + 1).flat().join("|")})/` },
}));

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "import cycles make load order matter and hide layering mistakes",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "library-not-cli",
      comment: "the library takes typed options; argument parsing and terminal drawing live in src/cli",
      severity: "error",
      from: { path: "^src/lib/" },
      to: { path: "^src/(cli|experiments)/" },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
