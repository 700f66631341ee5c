/**
 * `l3kit data merge <out>`: joins the shards of a sharded build in `<out>/parts/` — a sample cache
 * (`data cache --shard`) or a synthetic benchmark (`data synth --shard`), told apart by their files —
 * and prints what it wrote.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import { findShardParts, mergeSampleCacheParts, mergeSynthParts, SYNTH_PART_FILE } from "../lib/data";
import { ConfigError } from "../lib/util";

/** Merges the parts in `out` (see the module's comment); `log` gets the summary (default stdout). */
export async function mergeCommand(
  out: string,
  opts: { keepParts?: boolean; log?: (line: string) => void; stream?: NodeJS.WriteStream } = {},
): Promise<void> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const parts = await findShardParts(path.resolve(out));
  const first = (parts[0] as { dir: string }).dir;
  if (existsSync(path.join(first, "index.json"))) {
    const stream = opts.stream ?? process.stderr;
    let last = 0;
    const r = await mergeSampleCacheParts(out, {
      keepParts: opts.keepParts,
      onProgress: (done, total) => {
        if (process.env.L3KIT_QUIET === "1") return;
        const now = Date.now();
        if (stream.isTTY) stream.write(`\rmerge: shard file ${done}/${total}${done === total ? "\n" : ""}`);
        else if (now - last > 5000 || done === total) {
          last = now;
          stream.write(`merge: shard file ${done}/${total}\n`);
        }
      },
    });
    log(
      `merge: ${r.parts} shards → cache ${r.dir}: ${r.shards} shard files, ${r.clips} clips, ${r.samples} samples${r.removedParts ? "; parts/ removed" : ""}`,
    );
    return;
  }
  if (existsSync(path.join(first, SYNTH_PART_FILE)) || existsSync(path.join(first, "synth-config.json"))) {
    const r = await mergeSynthParts(out, { keepParts: opts.keepParts });
    log(`merge: ${parts.length} shards → synthetic benchmark ${r.out}: ${r.rows.length} clips; manifest ${r.manifestPath}`);
    return;
  }
  throw new ConfigError(`${first} holds neither a cache shard (index.json) nor a synthetic-benchmark shard (${SYNTH_PART_FILE})`, {
    subject: out,
    reason: "bad-part",
  });
}
