export * from "./provenance";
export * from "./table";
