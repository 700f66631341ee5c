import type { z } from "zod";
import type { BackendInfo } from "../lib/backend";
import type { CutShortRecord, EngineRecord } from "../lib/results";

/** Config keys with a fixed set of values: dotted key → the values it accepts (an array value: each element). */
export type ConfigChoices = Readonly<Record<string, readonly string[]>>;

/** A nested plain-data config: numbers, strings, booleans, arrays and nested objects. */
export type ConfigValue = number | string | boolean | null | ConfigValue[] | { [key: string]: ConfigValue };
export type ConfigObject = { [key: string]: ConfigValue };

/** What an experiment's run function gets. */
export interface ExperimentContext<C extends object> {
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

/** An experiment's config schema: an object of sections (model, data, train, …) and top-level keys. */
export type ConfigSchema = z.ZodObject;

/**
 * One named experiment as the runner, the queue and `--help` see it (made by {@link defineExperiment}
 * from a schema, profiles and typed run functions).
 */
export interface Experiment {
  name: string;
  /** One line for `experiment list`. */
  summary: string;
  /** A paragraph for `experiment <name> --help`. */
  description: string;
  /** The config: every key with its type, default, check and help text. */
  schema: ConfigSchema;
  /** The schema's defaults (nested, in declaration order: the order provenance records). */
  defaults: ConfigObject;
  /** Named partial overrides chosen by `--set profile=NAME` (e.g. `ci`: finish in CI time). */
  profiles: Record<string, Partial<Record<string, ConfigValue>>>;
  /** Short help for config keys (dotted paths), from the schema's descriptions; shown by --help. */
  help: Record<string, string>;
  /**
   * Every config key with a fixed set of values (the schema's enums), and those values (shown by
   * --help). Any other value fails when the config is resolved, before data is made or a model
   * trained; `profile` is checked against `profiles` without being listed here.
   */
  choices: ConfigChoices;
  /** Checks a resolved config against the schema; a ConfigError names the dotted key and the cause. */
  check(config: ConfigObject): void;
  run(ctx: ExperimentContext<ConfigObject>): Promise<ExperimentResult>;
  /**
   * Present when the experiment is made of independent cells (e.g. head × seed): then `--queue`
   * runs the cells as jobs on a queue, on `l3kit worker` processes anywhere, and the coordinator
   * writes the same results as `run` would.
   */
  cells?: QueueCells;
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
export type CellOutcome<R = unknown> = { cell: CellSpec; ok: true; result: R } | { cell: CellSpec; ok: false; error: string };

/**
 * An experiment as independent cells, typed by its config `C`, a cell's result `R` and what every
 * cell shares `P`: the same functions serve the one-process run, the queue's coordinator (`list`,
 * `prepare`, `finish`) and its workers (`check`, `prepare`, `run`).
 */
export interface CellPlan<C extends object, R, P> {
  /** The run's cells, in table order. */
  list(config: C, seeds: number[]): CellSpec[];
  /** Checks of the config beyond its schema, run before anything else (a worker rejects a job that fails them). */
  check?(config: C): void;
  /** Makes what every cell needs (data, caches); a worker keeps it for the next cell of the same run. */
  prepare(ctx: CellContext<C>): Promise<P>;
  /**
   * Runs one cell in `dir` (its checkpoints: with `resume`, continues from the last one there) and
   * returns its result as plain JSON, or null when `ctx.signal` stopped it (saved, resumable).
   */
  run(ctx: CellContext<C>, prepared: P, cell: CellSpec, dir: string, resume: boolean): Promise<R | null>;
  /** Checks a result that came back from a worker (or a cell.json), and types it (throws when it is not one). */
  parseResult(value: unknown, cell: CellSpec): R;
  /** Writes the run's table, provenance and index from the cells' outcomes (failed cells marked as such). */
  finish(ctx: ExperimentContext<C>, prepared: P, outcomes: CellOutcome<R>[]): Promise<ExperimentResult>;
}

/**
 * A {@link CellPlan} as the queue sees it, whatever the experiment: the config arrives as plain data
 * (checked against the schema by each function), and what `prepare` made carries its own typed
 * `run` and `finish`.
 */
export interface QueueCells {
  list(config: ConfigObject, seeds: number[]): CellSpec[];
  check(config: ConfigObject): void;
  prepare(ctx: CellContext<ConfigObject>): Promise<PreparedCells>;
  /** Checks a result from a worker or a cell.json; returns it as it is to be written. */
  parseResult(value: unknown, cell: CellSpec): unknown;
}

/** What every cell of a run shares, with the functions that use it. */
export interface PreparedCells {
  run(ctx: CellContext<ConfigObject>, cell: CellSpec, dir: string, resume: boolean): Promise<unknown | null>;
  finish(ctx: ExperimentContext<ConfigObject>, outcomes: CellOutcome[]): Promise<ExperimentResult>;
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
