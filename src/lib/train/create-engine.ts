/**
 * Picks and builds the training engine: `auto` trains on tfjs when the native GPU backend runs
 * (tensorflow-gpu), else on onnxruntime when onnxruntime-node loads, else on the active tfjs backend.
 */
import * as tf from "@tensorflow/tfjs";
import { backendInfo } from "../backend";
import type { L3Net } from "../models";
import { onnxRuntimeStatus } from "../models/onnx";
import { ConfigError, errorMessage } from "../util";
import type { EngineOptions, EngineStepConfig, TrainEngineName, TrainingEngine } from "./engine";
import { createOnnxTrainingEngine } from "./onnx-engine";
import { TfjsTrainingEngine } from "./tfjs-engine";

/** The engine a preference resolves to in this process, and why. */
export function resolveTrainEngine(prefer: TrainEngineName = "auto"): { engine: "onnx" | "tfjs"; reason: string } {
  if (prefer === "tfjs") return { engine: "tfjs", reason: `tfjs requested (backend "${tf.getBackend()}")` };
  const st = onnxRuntimeStatus();
  if (prefer === "onnx") {
    if (!st.available)
      throw new ConfigError(`engine "onnx" requested but ${st.reason}`, { subject: "train.engine", reason: "onnx-unavailable" });
    return { engine: "onnx", reason: `onnx requested (${st.reason})` };
  }
  if (backendInfo()?.name === "tensorflow-gpu") return { engine: "tfjs", reason: "auto: tfjs-node-gpu runs on a GPU" };
  if (st.available) return { engine: "onnx", reason: `auto: ${st.reason} loads` };
  return { engine: "tfjs", reason: `auto: ${st.reason}; training on tfjs backend "${tf.getBackend()}"` };
}

/**
 * Builds the engine for a model and step config ({@link resolveTrainEngine} for `auto`). With `auto`,
 * an onnx engine that fails to build (e.g. `train.microBatches` > 1, which it does not need) falls back
 * to tfjs, and the reason says why; a requested `onnx` engine's or `webgpu` device's failure is thrown.
 */
export async function createTrainingEngine(model: L3Net, step: EngineStepConfig, opts: EngineOptions = {}): Promise<TrainingEngine> {
  const prefer = opts.engine ?? "auto";
  const { engine, reason } = resolveTrainEngine(prefer);
  if (engine === "tfjs") return new TfjsTrainingEngine(model, step, reason);
  try {
    return await createOnnxTrainingEngine(model, step, { ...opts, reason });
  } catch (err) {
    // a named engine or device is a request, not a preference: its failure is the answer
    if (prefer !== "auto" || (opts.device ?? "cpu") !== "cpu") throw err;
    return new TfjsTrainingEngine(
      model,
      step,
      `auto: the onnx engine did not build (${errorMessage(err).split("\n")[0]}); training on tfjs backend "${tf.getBackend()}"`,
    );
  }
}
