export * from "./config";
export * from "./options";
export * from "./registry";
export * from "./runner";
export * from "./types";
export * from "./define";
