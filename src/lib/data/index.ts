/**
 * data — manifests, dataset builders, the AVC pair sampler, the sample cache and batches.
 */
export * from "./batches";
export * from "./builders";
export * from "./cache";
export * from "./cache-merge";
export * from "./dataset";
export * from "./manifest";
export * from "./prepare";
export * from "./sampler";
export * from "./shard";
export * from "./split";
export * from "./synth";
export * from "./types";
