export * from "./errors";
export * from "./fs";
export * from "./pool";
export * from "./rng";
