#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner through tsx.
// Node 20's `--test` takes no globs, so the files are listed here.
// Usage: npm test [-- <substring filter>...]
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
function walk(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "fixtures") out.push(...walk(p));
    else if (entry.isFile() && entry.name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const flags = process.argv.slice(2).filter((a) => a.startsWith("-"));
let files = walk(path.join(root, "test")).sort();
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", ...flags, ...files.map((f) => path.relative(root, f))],
  { cwd: root, stdio: "inherit", env: { ...process.env, L3KIT_QUIET: process.env.L3KIT_QUIET ?? "1" } },
);
process.exit(res.status ?? 1);
