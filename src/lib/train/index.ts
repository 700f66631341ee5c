export * from "./bundle";
export * from "./checkpoint";
export * from "./loop";
export * from "./optimizer";
export * from "./progress";
export * from "./schedule";
export * from "./transforms";
export * from "./pairing";
