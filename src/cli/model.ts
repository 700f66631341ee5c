import type { Command } from "commander";

export function registerModelCommand(program: Command): void {
  const model = program.command("model").description("Inspect L³-Net configurations and checkpoints");
  model
    .command("summary")
    .description("Print layers, output shapes, parameters and FLOPs per sample of a preset, a config file or a checkpoint")
    .argument("<preset|config.json|checkpoint>", "paper | lite | tiny, a JSON config file, or a checkpoint folder")
    .option("--fusion <head>", "override the fusion head: concat | euclidean | cosine | avol")
    .option("--json", "print the summary as JSON")
    .action(async (what: string, opts: { fusion?: string; json?: boolean }) => {
      const { resolveModelConfig, modelSummary, formatModelSummary } = require("../lib/models") as typeof import("../lib/models");
      const config = await resolveModelConfig(what, opts.fusion ? { fusion: opts.fusion } : {});
      const summary = modelSummary(config);
      console.log(opts.json ? JSON.stringify(summary, null, 2) : formatModelSummary(summary));
    });
}
