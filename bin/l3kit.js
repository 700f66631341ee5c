#!/usr/bin/env node
// The `l3kit` command. Runs the compiled CLI from dist/ (built by `npm install` / `npm run build`);
// in a checkout without dist/ it falls back to the TypeScript sources through tsx.
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const built = path.join(root, "dist", "src", "cli", "main.js");
let cli;
if (fs.existsSync(built) && process.env.L3KIT_FROM_SOURCE !== "1") {
  cli = require(built);
} else {
  try {
    require("tsx/cjs");
  } catch {
    console.error("l3kit: dist/ is missing; run `npm run build` first.");
    process.exit(1);
  }
  cli = require(path.join(root, "src", "cli", "main.ts"));
}
cli.main(process.argv).catch((err) => {
  console.error(`l3kit: ${err?.message ? err.message : err}`);
  process.exit(1);
});
