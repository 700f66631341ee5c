#!/usr/bin/env node
// Makes the package importable by its own name from inside the repository:
// node_modules/l3kit -> the project root, and node_modules/.bin/l3kit -> bin/l3kit.js.
// tslab type-checks notebook cells with node10 module resolution, which does not resolve a
// package's own name, so notebooks need this link to `import ... from "l3kit"`.
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const nm = path.join(root, "node_modules");
if (!fs.existsSync(nm)) process.exit(0); // installed as a dependency elsewhere: nothing to do
// Installed as someone's dependency (…/node_modules/l3kit): leave their tree alone.
if (path.basename(path.dirname(root)) === "node_modules") process.exit(0);

function link(target, at) {
  try {
    const st = fs.lstatSync(at);
    if (st.isSymbolicLink() && fs.readlinkSync(at) === target) return;
    fs.rmSync(at, { recursive: true, force: true });
  } catch {}
  fs.mkdirSync(path.dirname(at), { recursive: true });
  fs.symlinkSync(target, at);
}
link("..", path.join(nm, "l3kit"));
link("../../bin/l3kit.js", path.join(nm, ".bin", "l3kit"));
try {
  fs.chmodSync(path.join(root, "bin", "l3kit.js"), 0o755);
} catch {}
