export * from "./errors";
export * from "./fs";
export * from "./hash";
export * from "./package";
export * from "./pool";
export * from "./rng";
export * from "./schema";
