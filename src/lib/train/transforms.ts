import { augmentGain } from "../audio";
import type { AvcTransforms } from "../data";
import { audioInputShape, computeAudioInput, computeFrameInput, type L3NetConfig } from "../models";
import { frameToFloat, trainTransform } from "../vision";

/**
 * The input pipeline of a model config as data transforms. Training: the paper's frame
 * augmentation (resize short side, random crop, flip, saturation, brightness) and audio gain
 * × U[0.9, 1.1]; evaluation: centre crop, no gain. Audio must already be at the front-end's sample
 * rate (build caches and sources with it); the spectrogram is the model's own front-end.
 */
export function avcTransforms(config: L3NetConfig, opts: { augment: boolean }): AvcTransforms {
  const vfe = config.vision.frontEnd;
  const frameShape = [vfe.size, vfe.size, 3];
  const audioShape = audioInputShape(config);
  return {
    frame: (frame, rng) => ({
      data: opts.augment
        ? frameToFloat(trainTransform(frame, rng, { resizeTo: vfe.resizeTo, cropTo: vfe.size }))
        : computeFrameInput(config, frame),
      shape: frameShape,
    }),
    audio: (samples, rng) => ({ data: computeAudioInput(config, opts.augment ? augmentGain(samples, rng) : samples), shape: audioShape }),
  };
}
