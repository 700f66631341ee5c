/**
 * Texts and codes of the experiment command's options, in a module without imports so that the CLI
 * can show them without loading the experiments.
 */

/** The CLI's exit status when the time guard cut training short and `--allow-partial` was not given. */
export const CUT_SHORT_EXIT_CODE = 3;

/** `--engine` help: what trains, and what `auto` picks. */
export const ENGINE_HELP =
  "auto | onnx | tfjs: what computes the training steps, the same as --set train.engine=E (default auto: tfjs on tfjs-node-gpu when installed, else onnx when onnxruntime-node loads, else the best tfjs backend)";

/** `--allow-partial` help. */
export const ALLOW_PARTIAL_HELP = `exit 0 when the time guard (train.maxSeconds) cut training short; without it such a run exits with status ${CUT_SHORT_EXIT_CODE} (its results are written and marked as cut short either way)`;
