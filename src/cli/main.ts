/**
 * The `l3kit` command line. Every subcommand has `--help`; heavy modules (tfjs, ffmpeg) load
 * only when a subcommand runs, so `l3kit --help` is instant.
 */
import { Command, Option } from "commander";
import { registerBackendCommand } from "./backend";
import { registerBenchCommand } from "./bench";
import { registerDataCommand } from "./data";
import { registerEmbedCommand } from "./embed";
import { registerExperimentCommand } from "./experiment";
import { registerModelCommand } from "./model";
import { installProgressBar } from "./progress";
import { packageVersion } from "./shared";
import { registerWorkerCommand } from "./worker";

/** Builds the commander program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command("l3kit")
    .description("Look, Listen and Learn toolkit: audio-visual correspondence, L³-Net, probes and localization")
    .version(packageVersion(), "-V, --version")
    .showHelpAfterError("(add --help for usage)")
    .showSuggestionAfterError(true)
    .enablePositionalOptions();
  registerExperimentCommand(program);
  registerDataCommand(program);
  registerModelCommand(program);
  registerEmbedCommand(program);
  registerBenchCommand(program);
  registerBackendCommand(program);
  registerWorkerCommand(program);
  return program;
}

/** Entry point used by bin/l3kit.js. */
export async function main(argv: string[]): Promise<void> {
  installProgressBar(); // the library draws plain lines; the command draws bars on a terminal
  await buildProgram().parseAsync(argv);
}

export { Option };
