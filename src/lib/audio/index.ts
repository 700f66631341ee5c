export * from "./augment";
export * from "./fft";
export * from "./mel";
export * from "./spectrogram";
