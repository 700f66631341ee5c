export * from "./errors";
export * from "./fs";
export * from "./package";
export * from "./pool";
export * from "./rng";
