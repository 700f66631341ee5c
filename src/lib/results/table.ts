import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../util";
import { cutShortNote, type Provenance } from "./provenance";

/** A cell of a results table: numbers are formatted deterministically, strings kept. */
export type Cell = number | string | boolean | null;
/** A results table row. */
export type TableRow = Record<string, Cell>;

/** A danfojs DataFrame (duck-typed so callers can pass one without l3kit importing danfojs eagerly). */
export interface DataFrameLike {
  columns: string[];
  values: unknown[][] | unknown[];
}

/** Builds a danfojs DataFrame from rows (columns in first-seen order). */
export function toDataFrame(rows: TableRow[]): import("danfojs-node").DataFrame {
  // Loaded lazily: danfojs-node costs about a second to import.
  const dfd = require("danfojs-node") as typeof import("danfojs-node");
  const columns = tableColumns(rows);
  return new dfd.DataFrame(
    rows.map((r) => columns.map((c) => r[c] ?? null)),
    { columns },
  );
}

/** Rows of a DataFrame (or rows as they are). */
export function tableRows(table: TableRow[] | DataFrameLike): TableRow[] {
  if (Array.isArray(table)) return table;
  const values = table.values as unknown[][];
  return values.map((row) => Object.fromEntries(table.columns.map((c, i) => [c, (Array.isArray(row) ? row[i] : row) as Cell])));
}

/** Column names in first-seen order. */
export function tableColumns(rows: TableRow[]): string[] {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return cols;
}

/** Formats a number for tables: fixed significant decimals so reruns are byte-identical. */
export function formatCell(v: Cell | undefined, digits = 4): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    return v.toFixed(digits);
  }
  return String(v);
}

/** `mean ± std` text of numbers (sample std; `±0` for one value). */
export function meanStd(values: number[], digits = 3): { mean: number; std: number; text: string } {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : Number.NaN;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, text: `${mean.toFixed(digits)} ± ${std.toFixed(digits)}` };
}

function csvEscape(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * CSV text (RFC 4180 quoting, `\n` line ends). Hand-written on purpose: csv-stringify 6.9.0 (sync,
 * same cells, `record_delimiter: "\n"`, `eof: true`) gives byte-identical text but is slower (AMD EPYC,
 * min of 7 interleaved reps, `nice -n 15 npx tsx scratch/csv-bench.ts`, not kept: a 12×10 results
 * table 0.024 vs 0.039 ms, 10,000×10 32.5 vs 61.1 ms); danfojs' toCSV does not quote fields.
 */
export function toCsv(rows: TableRow[], digits = 4): string {
  const cols = tableColumns(rows);
  const lines = [cols.map(csvEscape).join(",")];
  for (const r of rows) lines.push(cols.map((c) => csvEscape(formatCell(r[c], digits))).join(","));
  return `${lines.join("\n")}\n`;
}

/** GitHub-flavoured Markdown table text. */
export function toMarkdown(rows: TableRow[], digits = 4): string {
  const cols = tableColumns(rows);
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [
    `| ${cols.map(esc).join(" | ")} |`,
    `|${cols.map((c) => (rows.some((r) => typeof r[c] === "number") ? " ---: " : " --- ")).join("|")}|`,
  ];
  for (const r of rows) lines.push(`| ${cols.map((c) => esc(formatCell(r[c], digits))).join(" | ")} |`);
  return `${lines.join("\n")}\n`;
}

/** What {@link writeResults} wrote. */
export interface WrittenResults {
  dir: string;
  files: string[];
}

/**
 * Writes a results table as `table.csv`, `table.md` and `table.json` plus `provenance.json`
 * (all atomically), and adds the run to `<resultsRoot>/index.md`.
 * `table.csv` holds only what the config and seed determine; wall-clock numbers go in `extra`
 * tables (e.g. `timing.csv`) so that reruns give a byte-identical `table.csv`. A run whose
 * provenance says it was cut short (`provenance.cutShort`) is marked as such in every file: a
 * `cutShort` column in each row and a first note.
 */
export async function writeResults(args: {
  dir: string;
  table: TableRow[] | DataFrameLike;
  provenance: Provenance;
  /**
   * The training recipe the numbers come from (model, head, pairs, optimizer, steps, engine, seed),
   * written as the header line under the title of `table.md` and into provenance, so that numbers of
   * a fast recipe are never read as the paper's.
   */
  recipe: string;
  /**
   * What `table.md` shows in place of `table`, laid out for reading (e.g. metrics × model and
   * baselines); `table.csv` and `table.json` keep `table`'s machine-readable rows.
   */
  markdownTable?: TableRow[];
  title?: string;
  notes?: string[];
  extra?: Record<string, TableRow[]>;
  resultsRoot?: string;
  digits?: number;
}): Promise<WrittenResults> {
  const cut = args.provenance.cutShort ? cutShortNote(args.provenance.cutShort) : null;
  const rows = cut ? tableRows(args.table).map((r) => ({ ...r, cutShort: cut })) : tableRows(args.table);
  const notes = cut ? [`**Partial run**: ${cut}.`, ...(args.notes ?? [])] : (args.notes ?? []);
  const digits = args.digits ?? 4;
  const files: string[] = [];
  const put = async (name: string, data: string) => {
    const f = path.join(args.dir, name);
    await writeFileAtomic(f, data);
    files.push(f);
  };
  await put("table.csv", toCsv(rows, digits));
  await put("table.json", `${JSON.stringify(rows, null, 2)}\n`);
  const shown = args.markdownTable ? (cut ? args.markdownTable.map((r) => ({ ...r, cutShort: cut })) : args.markdownTable) : rows;
  let md = `# ${args.title ?? args.provenance.experiment}\n\n**Recipe:** ${args.recipe}\n\n${toMarkdown(shown, digits)}`;
  for (const [name, extra] of Object.entries(args.extra ?? {})) {
    await put(`${name}.csv`, toCsv(extra, digits));
    md += `\n## ${name}\n\n${toMarkdown(extra, digits)}`;
  }
  if (notes.length) md += `\n${notes.map((n) => `- ${n}`).join("\n")}\n`;
  const p = args.provenance;
  md += `\nBackend ${p.backend?.name ?? "?"}${p.backend?.threads ? ` (${p.backend.threads} threads)` : ""}${p.engine ? `, engine ${p.engine.name}` : ""}, seeds ${p.seeds.join(", ")}, l3kit ${p.versions.l3kit}, commit ${p.git.commit?.slice(0, 10) ?? "?"}${p.git.dirty ? " (dirty)" : ""}, ${p.wallTimeSec} s. Full provenance: provenance.json.\n`;
  await put("table.md", md);
  await writeJsonAtomic(path.join(args.dir, "provenance.json"), { ...p, recipe: args.recipe });
  files.push(path.join(args.dir, "provenance.json"));
  if (args.resultsRoot) await updateResultsIndex(args.resultsRoot);
  return { dir: args.dir, files };
}

/** Rebuilds `<root>/index.md`: one line per run folder that has a provenance.json. */
export async function updateResultsIndex(root: string): Promise<string> {
  const runs: Array<{ rel: string; p: Provenance }> = [];
  async function walk(dir: string, depth: number): Promise<void> {
    if (depth > 4) return;
    let entries: import("node:fs").Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => e.isFile() && e.name === "provenance.json") && entries.some((e) => e.name === "table.md")) {
      try {
        runs.push({ rel: path.relative(root, dir), p: JSON.parse(await fsp.readFile(path.join(dir, "provenance.json"), "utf8")) });
      } catch {}
    }
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith(".")) await walk(path.join(dir, e.name), depth + 1);
  }
  await walk(root, 0);
  runs.sort((a, b) => (a.p.finishedAt < b.p.finishedAt ? 1 : -1));
  const lines = [
    "# l3kit results",
    "",
    "| finished | experiment | run | seeds | backend | wall s | commit |",
    "| --- | --- | --- | --- | --- | ---: | --- |",
    ...runs.map(
      (r) =>
        `| ${r.p.finishedAt.replace("T", " ").slice(0, 19)} | ${r.p.experiment}${r.p.cutShort ? " (cut short)" : ""} | [${r.rel}](${r.rel}/table.md) | ${r.p.seeds.join(",")} | ${r.p.backend?.name ?? "?"} | ${r.p.wallTimeSec} | ${r.p.git.commit?.slice(0, 10) ?? "?"} |`,
    ),
  ];
  const text = `${lines.join("\n")}\n`;
  await writeFileAtomic(path.join(root, "index.md"), text);
  return text;
}
