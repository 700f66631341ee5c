export * from "./jobs";
export * from "./url";
export * from "./lock";
