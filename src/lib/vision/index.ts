export * from "./transforms";
