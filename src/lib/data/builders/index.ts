export * from "./esc50";
export * from "./flickr";
export * from "./kinetics";
export * from "./probe";
export * from "./scan";
export * from "./vggss";
