/**
 * The model's input front-ends: how raw samples and decoded frames become tower inputs, exactly as
 * the config records them. Data loaders use these so training inputs match the model.
 */
import { type LinearSpectrogramOptions, linearSpectrogram, type MelSpectrogramOptions, melSpectrogram } from "../audio";
import type { RgbFrame } from "../media";
import { L3kitError } from "../util";
import { evalTransform, frameToFloat } from "../vision";
import { type AudioFrontEnd, audioInputShape, audioWindowSamples, type L3NetConfig } from "./config";

/** The options for `linearSpectrogram` / `melSpectrogram` (from `../audio`) that a front-end stands for. */
export function spectrogramOptions(
  fe: AudioFrontEnd,
): { kind: "linear"; options: LinearSpectrogramOptions } | { kind: "mel"; options: MelSpectrogramOptions } {
  if (fe.kind === "linear") {
    return {
      kind: "linear",
      options: {
        sampleRate: fe.sampleRate,
        nFft: fe.nFft,
        winLength: fe.winLength,
        hopLength: fe.hopLength,
        center: fe.padding === "center",
        normalize: fe.normalize,
      },
    };
  }
  return {
    kind: "mel",
    options: {
      sampleRate: fe.sampleRate,
      nFft: fe.nFft,
      hopLength: fe.hopLength,
      nMels: fe.nMels,
      htk: fe.htk,
      padding: fe.padding,
      topDb: fe.topDb,
    },
  };
}

/**
 * One audio tower input (bins × frames, row-major, i.e. H×W of the B×H×W×1 tensor) from one window of
 * mono samples at the front-end's rate. The window is zero-padded or cut to `durationSec` first.
 */
export function computeAudioInput(config: L3NetConfig | AudioFrontEnd, samples: Float32Array): Float32Array {
  const fe = "audio" in config ? config.audio.frontEnd : config;
  const n = audioWindowSamples(fe);
  let x = samples;
  if (x.length !== n) {
    x = new Float32Array(n);
    x.set(samples.subarray(0, n));
  }
  const spec = spectrogramOptions(fe);
  const s = spec.kind === "linear" ? linearSpectrogram(x, spec.options) : melSpectrogram(x, spec.options);
  const [bins, frames] = audioInputShape(fe);
  if (s.bins !== bins || s.frames !== frames) {
    throw new L3kitError(`the ${fe.kind} front-end gave ${s.bins}×${s.frames}, the model expects ${bins}×${frames}`, {
      subject: "audio front-end",
      reason: "shape-mismatch",
    });
  }
  return s.data;
}

/** One vision tower input (size×size×3 HWC in [0, 1]) from a decoded frame: resize short side, centre crop. */
export function computeFrameInput(config: L3NetConfig, frame: RgbFrame): Float32Array {
  const { size, resizeTo } = config.vision.frontEnd;
  const f = frame.width === size && frame.height === size ? frame : evalTransform(frame, { resizeTo, cropTo: size });
  return frameToFloat(f);
}
