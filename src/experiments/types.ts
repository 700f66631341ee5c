import type { BackendInfo } from "../lib/backend";
import type { CutShortRecord, EngineRecord } from "../lib/results";

/** Config keys with a fixed set of values: dotted key → the values it accepts (an array value: each element). */
export type ConfigChoices = Readonly<Record<string, readonly string[]>>;

/** A nested plain-data config: numbers, strings, booleans, arrays and nested objects. */
export type ConfigValue = number | string | boolean | null | ConfigValue[] | { [key: string]: ConfigValue };
export type ConfigObject = { [key: string]: ConfigValue };

/** What an experiment's run function gets. */
export interface ExperimentContext<C extends ConfigObject> {
  /** The full config: defaults, then --config file, then the profile's overrides, then --set. */
  config: C;
  /** Seeds to run (from --seed and --seeds). */
  seeds: number[];
  /** The run folder (created). */
  out: string;
  /** Root of all results (for results/index.md). */
  resultsRoot: string;
  /** Continue an interrupted run in `out` instead of starting over. */
  resume: boolean;
  backend: BackendInfo;
  /** When the run started (for provenance). */
  startedAt: Date;
  /** Progress and report lines (stderr), silenced by L3KIT_QUIET=1. */
  log: (line: string) => void;
  /** Set when `log` is silenced (L3KIT_QUIET=1, or the caller asked): progress bars stay off too. */
  quiet?: boolean;
  /** Aborted on SIGINT/SIGTERM: long loops check it, save and return. */
  signal: AbortSignal;
}

/** One named experiment: typed defaults, named profiles and a run function. */
export interface Experiment<C extends ConfigObject = ConfigObject> {
  name: string;
  /** One line for `experiment list`. */
  summary: string;
  /** A paragraph for `experiment <name> --help`. */
  description: string;
  defaults: C;
  /** Named partial overrides chosen by `--set profile=NAME` (e.g. `ci`: finish in CI time). */
  profiles: Record<string, Partial<Record<string, ConfigValue>>>;
  /** Short help for config keys (dotted paths), shown by --help. */
  help?: Record<string, string>;
  /**
   * Every config key with a fixed set of values, and those values (shown by --help). Any other value
   * fails when the config is resolved, before data is made or a model trained; `profile` is checked
   * against `profiles` without being listed here.
   */
  choices: ConfigChoices;
  run(ctx: ExperimentContext<C>): Promise<ExperimentResult>;
  /**
   * Present when the experiment is made of independent cells (e.g. head × seed): then `--queue`
   * runs the cells as jobs on a queue, on `l3kit worker` processes anywhere, and the coordinator
   * writes the same results as `run` would.
   */
  cells?: CellPlan<C>;
}

/** One independent unit of an experiment's work (e.g. one head and one seed of an ablation). */
export interface CellSpec {
  /** Unique in the run; letters, digits, `.`, `_`, `-` (a folder name and part of a job id), e.g. `avol-seed1`. */
  key: string;
  /** For logs, e.g. `avol seed 1`. */
  label: string;
}

/** What a cell's functions get: the run's config and seeds, the backend, a log and a stop signal. */
export interface CellContext<C extends object> {
  config: C;
  seeds: number[];
  backend: BackendInfo;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** A cell's outcome, as the coordinator hands it to {@link CellPlan.finish}. */
export type CellOutcome = { cell: CellSpec; ok: true; result: unknown } | { cell: CellSpec; ok: false; error: string };

/**
 * An experiment as independent cells: the same functions serve the one-process run, the queue's
 * coordinator (`list`, `prepare`, `finish`) and its workers (`check`, `prepare`, `run`).
 */
export interface CellPlan<C extends object = ConfigObject> {
  /** The run's cells, in table order. */
  list(config: C, seeds: number[]): CellSpec[];
  /** Checks of the config beyond its schema, run before anything else (a worker rejects a job that fails them). */
  check?(config: C): void;
  /** Makes what every cell needs (data, caches); a worker keeps it for the next cell of the same run. */
  prepare(ctx: CellContext<C>): Promise<unknown>;
  /**
   * Runs one cell in `dir` (its checkpoints: with `resume`, continues from the last one there) and
   * returns its result as plain JSON, or null when `ctx.signal` stopped it (saved, resumable).
   */
  run(ctx: CellContext<C>, prepared: unknown, cell: CellSpec, dir: string, resume: boolean): Promise<ConfigValue | null>;
  /** Checks a result that came back from a worker, and types it (throws when it is not one). */
  parseResult(value: unknown, cell: CellSpec): ConfigValue;
  /** Writes the run's table, provenance and index from the cells' outcomes (failed cells marked as such). */
  finish(ctx: ExperimentContext<ConfigObject>, prepared: unknown, outcomes: CellOutcome[]): Promise<ExperimentResult>;
}

/** What a run returns (also written to disk by the experiment itself). */
export interface ExperimentResult {
  /** The run folder. */
  out: string;
  /** Files written, for the final summary. */
  files: string[];
  /** A short text summary printed at the end. */
  summary: string;
  /** The engine that trained (as in provenance.json), when the run trained or evaluated a model. */
  engine?: EngineRecord | null;
  /** Set when the time guard stopped training before its steps: the results are partial (the CLI then exits non-zero unless --allow-partial). */
  cutShort?: CutShortRecord | null;
  /** Cells that failed (a queue run reports them, marks them in the table and finishes the rest; the CLI then exits non-zero). */
  failedCells?: Array<{ cell: string; error: string }>;
}
