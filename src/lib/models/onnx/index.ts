/**
 * ONNX export of L³-Nets and forward-only inference on onnxruntime-node (optional) or tfjs.
 */
export {
  exportOnnx,
  exportOnnxGraph,
  ONNX_DEFAULT_OUTPUTS,
  ONNX_EXTRA_OUTPUTS,
  type OnnxExportInfo,
  type OnnxExportOptions,
  type OnnxOutputName,
  type OnnxWeight,
  onnxWeightsOf,
  resolveOnnxOutputs,
  saveOnnx,
} from "./export";
export {
  createInferenceRunner,
  type InferenceEngineChoice,
  INFERENCE_ENGINES,
  type InferenceArray,
  type InferenceEngine,
  type InferenceInputs,
  type InferenceRunner,
  type InferenceRunnerOptions,
  OnnxL3Runner,
  type OnnxRuntimeStatus,
  onnxRuntimeStatus,
  type OrtModuleLike,
  type OrtSessionLike,
  type OrtTensorLike,
  parseInferenceEngine,
  releaseInferenceRunners,
  resolveInferenceEngine,
  inferenceRunnerFor,
  setOnnxRuntimeLoader,
  sharedInferenceRunner,
} from "./runner";
