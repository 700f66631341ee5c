/**
 * The embedded synthetic audio-visual benchmark: K sounding-object classes (shape, colour, texture
 * + sound pattern, pitch, timbre), clips with one sounding object and silent distractors, exact
 * boxes, deterministic generation and the known answers (ceilings, chance levels, baselines).
 */
export * from "./audio";
export * from "./baselines";
export * from "./classes";
export * from "./clip";
export * from "./generate";
export * from "./readme";
export * from "./render";
