export * from "./config";
export * from "./registry";
export * from "./runner";
export * from "./types";
