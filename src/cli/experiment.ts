import type { Command } from "commander";
import {
  ALLOW_PARTIAL_HELP,
  CELLS_FAILED_EXIT_CODE,
  CUT_SHORT_EXIT_CODE,
  ENGINE_HELP,
  QUEUE_HELP,
  QUEUE_NAME_HELP,
} from "../experiments/options";
import { intArg } from "./shared";

const collect = (value: string, prev: string[]) => [...prev, value];

/** Registers `l3kit experiment` (`npm run experiment -- <name> ...`). */
export function registerExperimentCommand(program: Command): void {
  program
    .command("experiment")
    .description("Run a named experiment (`list` shows them; `<name> --help` shows its config and defaults)")
    .argument("[name]", "experiment name, or `list`")
    .option("--config <file>", "JSON file with config overrides")
    .option("--set <key=value>", "override a config key (repeatable)", collect, [])
    .option("--seed <n>", "first seed", intArg("--seed"))
    .option("--seeds <n>", "number of seeds", intArg("--seeds"))
    .option("--out <dir>", "run folder")
    .option("--backend <name>", "auto | tensorflow-gpu | tensorflow | wasm | cpu (default: $L3KIT_BACKEND or auto)")
    .option("--engine <name>", ENGINE_HELP)
    .option("--resume", "continue an interrupted run (finished parts are skipped)")
    .option("--resume-from <dir>", "continue from this checkpoint folder of the run (later ones are set aside); implies --resume")
    .option("--allow-partial", ALLOW_PARTIAL_HELP)
    .option("--queue <url>", `(experiments with cells, e.g. ablation-fusion) ${QUEUE_HELP}`)
    .option("--queue-name <name>", QUEUE_NAME_HELP)
    .helpOption(false)
    .option("-h, --help", "show help (with a name: the experiment's config and defaults)")
    .action(
      async (name: string | undefined, opts: import("../experiments").RunOptions & { set: string[]; help?: boolean }, cmd: Command) => {
        const runner = require("../experiments") as typeof import("../experiments");
        if (!name || name === "list") {
          if (opts.help || !name) console.log(cmd.helpInformation());
          console.log(`Experiments:\n${runner.listExperiments()}`);
          return;
        }
        if (opts.help) {
          console.log(runner.experimentHelp(name));
          return;
        }
        const result = await runner.runExperiment(name, opts);
        console.log(result.summary);
        const report = runner.runReport(result, opts);
        if (report.engine) console.log(report.engine);
        if (result.failedCells?.length) {
          for (const f of result.failedCells) console.error(`l3kit: cell ${f.cell} failed: ${f.error}`);
          console.error(
            `l3kit: ${result.failedCells.length} cell(s) failed; the table marks them (failed_seeds) and leaves them out of the means. Exiting with status ${CELLS_FAILED_EXIT_CODE}; fix the cause and run the same command again (finished cells are kept)`,
          );
          process.exitCode = CELLS_FAILED_EXIT_CODE;
        }
        if (report.partial) {
          console.error(`l3kit: ${report.partial}`);
          if (!opts.allowPartial) process.exitCode = CUT_SHORT_EXIT_CODE;
        }
      },
    );
}
