export * from "./checkpointer";
export * from "./early-stopping";
export * from "./metrics-logger";
export * from "./progress-bar";
export * from "./signal-handler";
export * from "./time-guard";
