import type { BackendInfo } from "../lib/backend";
import type { CutShortRecord, EngineRecord } from "../lib/results";
import type { ConfigChoices } from "./config";

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
}
