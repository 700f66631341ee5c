export * from "./decode";
export * from "./encode";
export * from "./errors";
export { DEFAULT_MEDIA_TIMEOUT_MS, ffmpegPaths, liveMediaProcesses, mediaConcurrency, setMediaConcurrency } from "./ffmpeg";
export * from "./npy";
export * from "./probe";
export * from "./types";
