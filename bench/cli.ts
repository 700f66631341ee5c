// Runs the benchmark without the l3kit CLI: `node --import tsx bench/cli.ts [--quick] …`, the same
// options as `l3kit bench` (declared once, in src/cli/bench.ts).
import { Command } from "commander";
import { registerBenchCommand } from "../src/cli/bench";
import { errorMessage } from "../src/lib/util";

const program = new Command("bench");
registerBenchCommand(program);
program.parseAsync(["node", "bench", "bench", ...process.argv.slice(2)]).catch((err) => {
  console.error(`bench: ${errorMessage(err)}`);
  process.exit(1);
});
