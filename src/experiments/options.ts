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

/** The CLI's exit status when some cells of a queue run failed (the rest finished; the table marks the failed ones). */
export const CELLS_FAILED_EXIT_CODE = 4;

/** `--queue` help. */
export const QUEUE_HELP =
  "run the cells (head × seed …) as jobs on a BullMQ queue in Redis (redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS; or the password in L3KIT_QUEUE_PASSWORD) and follow them; `l3kit worker --queue URL` processes anywhere run them. The same table, provenance and index as a one-process run; running the command again re-attaches to the queued jobs";

/** `--queue-name` help. */
export const QUEUE_NAME_HELP = "the queue's name, the same for coordinator and workers (default: $L3KIT_QUEUE_NAME or l3kit-cells)";
