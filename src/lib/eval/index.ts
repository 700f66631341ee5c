/**
 * eval — AVC accuracy, frozen-feature linear probes (with their baselines), localization maps and
 * metrics. Everything returns plain numbers/arrays/objects, ready for a results table.
 */
export * from "./avc";
export * from "./baselines";
export * from "./extract";
export * from "./handmade";
export * from "./localization";
export * from "./maps";
export * from "./metrics";
export * from "./probe";
export * from "./protocol";
