/**
 * l3kit — Look, Listen and Learn in TypeScript.
 *
 * Data flows one way through the folders re-exported here:
 * media → audio/vision → data → models → train → eval → results → viz.
 */
export * from "./util";
export * from "./backend";
export * from "./media";
export * from "./audio";
export * from "./vision";
export * from "./data";
export * from "./models";
export * from "./train";
export * from "./eval";
export * from "./results";
export * from "./viz";
