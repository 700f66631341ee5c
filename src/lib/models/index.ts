/**
 * L³-Net models: configs and presets, the graph (op list + parameters), tfjs models with forward and
 * training passes, fusion heads (concat / AVE-Net / cosine / AVOL-Net), summaries, model files and
 * OpenL3-style embedding extraction.
 */
export * from "./checkpoint";
export * from "./config";
export * from "./embed";
export * from "./frontend";
export * from "./graph";
export * from "./model";
export * from "./onnx";
export { resampleAudio } from "./resample";
export { neededNodes, type RunOptions, runGraph } from "./runtime";
export * from "./summary";
