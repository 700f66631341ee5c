/**
 * l3kit — Look, Listen and Learn in TypeScript.
 *
 * The root export is a chosen, short list: the openl3-like functional surface (build or load a
 * model, embed audio, images and video), the datasets, AVC training, the probes and localization,
 * and the figures a notebook shows. Everything else lives under the folder it belongs to, one
 * subpath each, in the order data flows:
 *
 * `l3kit/util` → `l3kit/backend`, `l3kit/media`, `l3kit/audio`, `l3kit/vision` → `l3kit/data` →
 * `l3kit/models` → `l3kit/train`, `l3kit/eval` → `l3kit/results` → `l3kit/viz` (and `l3kit/queue`).
 *
 * ```ts
 * import { buildL3Net, embedAudio, readAudio } from "l3kit";
 * import { AvcPairSampler, avcBatches } from "l3kit/data";
 * ```
 * test/api/exports.test.ts keeps this list at 120 names or fewer (values and types together).
 */

// ---------------------------------------------------------------------------------------------
// Set-up and errors
// ---------------------------------------------------------------------------------------------

/** The compute backend (native TensorFlow → threaded wasm → cpu) and a line saying which one runs. */
export { type BackendInfo, formatBackendInfo, initBackend } from "./backend";
/** Every failure l3kit reports is an `L3kitError` (a bad setting: `ConfigError`), naming its subject. */
export { ConfigError, L3kitError, Rng } from "./util";

// ---------------------------------------------------------------------------------------------
// Media and features
// ---------------------------------------------------------------------------------------------

/** ffmpeg decoding: audio at a sample rate, RGB frames at given times, stream facts. */
export { type AudioClip, type MediaInfo, probeMedia, type RgbFrame, readAudio, readFrames } from "./media";
/** Linear and log-mel spectrograms (L³-Net's and OpenL3's audio front ends). */
export { linearSpectrogram, melSpectrogram, type Spectrogram } from "./audio";
/** The paper's frame pipeline: resize the short side, random crop and flip (train) or centre crop (eval). */
export { evalTransform, trainTransform } from "./vision";

// ---------------------------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------------------------

/** Manifests: one JSON row per clip (path, split, label, duration, boxes). */
export { type Box, loadManifest, type Manifest, type ManifestRow, manifestSummary, saveManifest, scanVideos } from "./data";
/** Dataset builders: ESC-50, Kinetics-Sounds (31 and 34 classes), Flickr-SoundNet, and the synthetic benchmark. */
export {
  buildEsc50,
  buildFlickrSoundNet,
  buildKineticsSounds,
  generateSynthDataset,
  KINETICS_SOUNDS_31,
  KINETICS_SOUNDS_34,
  type SynthProfileName,
} from "./data";
/** A dataset in one call: a manifest (or the synthetic benchmark) and its sample cache, made once and reused. */
export { type DatasetHandle, type OpenDatasetOptions, openDataset } from "./data";
/** Pair sources for AVC: the pre-decoded sample cache, or video files decoded on the fly. */
export { buildSampleCache, openSampleCache, type PairSource, type SampleCache, videoPairSource } from "./data";

// ---------------------------------------------------------------------------------------------
// Models and embeddings
// ---------------------------------------------------------------------------------------------

/** L³-Net: presets `paper`, `lite`, `tiny`; fusion heads `concat`, `euclidean`, `cosine`, `avol`. */
export {
  buildL3Net,
  countL3Params,
  type FusionKind,
  formatModelSummary,
  L3Net,
  type L3NetConfig,
  type L3NetConfigInput,
  type L3PresetName,
  resolveL3Config,
} from "./models";
/** Model files: a saved model or a training checkpoint; ONNX export. */
export { exportOnnx, loadModel, saveModel } from "./models";
/** OpenL3-style embeddings of audio, images and video files. */
export {
  type EmbedAudioOptions,
  type EmbedImageOptions,
  type EmbeddingPooling,
  type Embeddings,
  type EmbedVideoOptions,
  embedAudio,
  embedImage,
  embedVideo,
  type TimedEmbeddings,
  type VideoEmbeddings,
} from "./models";

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

/** A trained model in one call: trained once with given data and settings, loaded by every later call. */
export { type TrainedModel, type TrainedModelOptions, trainedModel } from "./train";
/** AVC training: a resumable run folder (metrics.jsonl, checkpoints, summary.json). */
export {
  formatTrainSummary,
  type MetricsRow,
  readMetricsJsonl,
  splitSource,
  type TrainAvcConfig,
  type TrainAvcOptions,
  type TrainAvcResult,
  trainAvc,
} from "./train";

// ---------------------------------------------------------------------------------------------
// Evaluation: AVC, linear probes, localization
// ---------------------------------------------------------------------------------------------

/** AVC accuracy and ROC AUC on fixed, seeded pairs. */
export { type AvcEvaluation, evaluateAvc, fixedAvcPairSource } from "./eval";
/** Frozen-feature linear probes (the paper's protocol), their feature extractors and baselines. */
export {
  colorHistogramExtractor,
  type FeatureExtractor,
  mfccStatsExtractor,
  modelFeatureExtractor,
  type ProbeProtocolResult,
  probeLabelEfficiency,
  randomWeightsModel,
  runProbeProtocol,
  towerFeatureExtractor,
  trainLinearProbe,
} from "./eval";
/** Sound-source localization: maps, pointing game and cIoU, beside vision-only and centre-prior baselines. */
export { evaluateLocalization, type LocalizationReport, localizationMaps, manifestLocalizationSource } from "./eval";

// ---------------------------------------------------------------------------------------------
// Results and figures
// ---------------------------------------------------------------------------------------------

/** Results tables (CSV, Markdown, danfojs) with provenance. */
export { type TableRow, toDataFrame, writeResults } from "./results";
/** Plotly figures for notebooks (`show`) and pages (`saveHtml`). */
export {
  type AblationRow,
  ablationBars,
  audioPlayer,
  confusionMatrixFigure,
  type Figure,
  frameGrid,
  labelEfficiencyFigure,
  learningCurves,
  liveLearningCurves,
  loadPlotly,
  localizationOverlay,
  perClassBars,
  saveHtml,
  show,
  spectrogramFigure,
  tableHtml,
} from "./viz";
