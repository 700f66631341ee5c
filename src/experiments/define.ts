/**
 * `defineExperiment`: an experiment declared once — its config schema (types, defaults, checks,
 * help texts), profiles and typed run functions — made into the {@link Experiment} the runner, the
 * queue and `--help` use. The config reaches the run functions checked and typed by the schema.
 */
import type { z } from "zod";
import { configFields, parseConfig, schemaDefaults } from "../lib/util";
import { toConfigObject } from "./config";
import type {
  CellContext,
  CellOutcome,
  CellPlan,
  ConfigChoices,
  ConfigObject,
  ConfigSchema,
  ConfigValue,
  Experiment,
  ExperimentContext,
  ExperimentResult,
  QueueCells,
} from "./types";

/** What an experiment declares; `R` and `P` type its cells' results and what the cells share. */
export interface ExperimentSpec<S extends ConfigSchema, R, P> {
  name: string;
  /** One line for `experiment list`. */
  summary: string;
  /** A paragraph for `experiment <name> --help`. */
  description: string;
  /** Every config key: its type, default, check and help text (`.describe()`). */
  schema: S;
  /** Named partial overrides chosen by `--set profile=NAME` (dotted keys). */
  profiles: Record<string, Partial<Record<string, ConfigValue>>>;
  run(ctx: ExperimentContext<z.output<S>>): Promise<ExperimentResult>;
  /** The experiment as independent cells, for `--queue` (see {@link CellPlan}). */
  cells?: CellPlan<z.output<S>, R, P>;
}

/** Makes an {@link Experiment} from its declaration (see the module comment). */
export function defineExperiment<S extends ConfigSchema, R = never, P = never>(spec: ExperimentSpec<S, R, P>): Experiment {
  const { schema } = spec;
  const typed = (config: ConfigObject): z.output<S> => parseConfig(schema, config);
  const fields = configFields(schema);
  const help: Record<string, string> = {};
  const choices: Record<string, readonly string[]> = {};
  for (const f of fields) {
    if (f.description) help[f.key] = f.description;
    if (f.choices) choices[f.key] = f.choices;
  }
  return {
    name: spec.name,
    summary: spec.summary,
    description: spec.description,
    schema,
    defaults: toConfigObject(schemaDefaults(schema), `${spec.name} defaults`),
    profiles: spec.profiles,
    help,
    choices: choices satisfies ConfigChoices,
    check: (config) => {
      typed(config);
    },
    run: (ctx) => spec.run({ ...ctx, config: typed(ctx.config) }),
    ...(spec.cells ? { cells: queueCells(spec.cells, typed) } : {}),
  };
}

/** A typed {@link CellPlan} as the queue sees it: each function checks and types the config it is given. */
function queueCells<C extends object, R, P>(plan: CellPlan<C, R, P>, typed: (config: ConfigObject) => C): QueueCells {
  const withConfig = <X extends { config: ConfigObject }>(ctx: X) => ({ ...ctx, config: typed(ctx.config) });
  return {
    list: (config, seeds) => plan.list(typed(config), seeds),
    check: (config) => {
      // The schema's checks first (typed), then the plan's own (`?.` would skip the schema with the plan's).
      const c = typed(config);
      plan.check?.(c);
    },
    prepare: async (ctx: CellContext<ConfigObject>) => {
      const prepared = await plan.prepare(withConfig(ctx));
      return {
        run: (cellCtx, cell, dir, resume) => plan.run(withConfig(cellCtx), prepared, cell, dir, resume),
        finish: (runCtx: ExperimentContext<ConfigObject>, outcomes: CellOutcome[]) =>
          plan.finish(
            withConfig(runCtx),
            prepared,
            outcomes.map((o): CellOutcome<R> => (o.ok ? { cell: o.cell, ok: true, result: plan.parseResult(o.result, o.cell) } : o)),
          ),
      };
    },
    parseResult: (value, cell) => {
      plan.parseResult(value, cell);
      return value;
    },
  };
}
