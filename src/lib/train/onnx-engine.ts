/** The onnxruntime training engine (being written). */
import type { L3Net } from "../models";
import { L3kitError } from "../util";
import type { EngineOptions, EngineStepConfig, TrainingEngine } from "./engine";

export async function createOnnxTrainingEngine(
  _model: L3Net,
  _step: EngineStepConfig,
  _opts: EngineOptions & { reason?: string } = {},
): Promise<TrainingEngine> {
  throw new L3kitError("the onnx training engine is not built yet", { subject: "train.engine" });
}
