import { createHash } from "node:crypto";
import { promises as fsp, readFileSync } from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { L3kitError, writeFileAtomic } from "../util";
import type { ManifestRow } from "./types";

const boxSchema = z
  .object({
    x1: z.number().min(0).max(1),
    y1: z.number().min(0).max(1),
    x2: z.number().min(0).max(1),
    y2: z.number().min(0).max(1),
    label: z.string().optional(),
  })
  .strict()
  .refine((b) => b.x2 > b.x1 && b.y2 > b.y1, { message: "box must have x2 > x1 and y2 > y1" });

const boxFrameSchema = z
  .object({
    t: z.number().min(0),
    sounding: z.array(boxSchema),
    distractors: z.array(boxSchema).optional(),
  })
  .strict();

const rowShape = {
  id: z.string().min(1),
  path: z.string().min(1),
  split: z.string().min(1),
  label: z.string().optional(),
  durationSec: z.number().min(0),
  fps: z.number().positive().optional(),
  hasAudio: z.boolean(),
  boxes: z.array(boxFrameSchema).optional(),
  fold: z.number().int().optional(),
  meta: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
};

/** The zod schema of a manifest row (unknown fields are errors: they are usually typos). */
export const manifestRowSchema = z.object(rowShape).strict();
const looseRowSchema = z.object(rowShape);

/** A problem found in one line of a manifest. */
export interface ManifestIssue {
  /** 1-based line number in the JSONL file. */
  line: number;
  message: string;
}

/** A loaded manifest: validated rows with paths resolved against the manifest's folder. */
export interface Manifest {
  file: string;
  dir: string;
  rows: ManifestRow[];
  /** Lines that were skipped (only with `onError: "skip"`). */
  errors: ManifestIssue[];
  /** sha256 of the canonical content (see {@link manifestHash}). */
  hash: string;
}

export interface LoadManifestOptions {
  /** "throw" (default): the first bad line throws. "skip": bad lines are left out and listed in `errors`. */
  onError?: "throw" | "skip";
  /** When false, unknown fields are dropped instead of being errors. Default true. */
  strict?: boolean;
}

/** Loads and validates a JSONL manifest; errors name the file, the line and the field. */
export async function loadManifest(file: string, opts: LoadManifestOptions = {}): Promise<Manifest> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    throw new L3kitError(`cannot read manifest (${(err as NodeJS.ErrnoException).code ?? "error"})`, {
      subject: file,
      reason: "missing",
      cause: err,
    });
  }
  const dir = path.dirname(path.resolve(file));
  const parsed = parseManifest(text, { ...opts, subject: path.basename(file) });
  return {
    file: path.resolve(file),
    dir,
    rows: parsed.rows.map((r) => ({ ...r, path: path.resolve(dir, r.path) })),
    errors: parsed.errors,
    hash: manifestHash(parsed.rows),
  };
}

/**
 * Parses JSONL manifest text (paths are left as written). Blank lines and lines starting with `//`
 * are ignored. Duplicate ids are errors that name both lines.
 */
export function parseManifest(
  text: string,
  opts: LoadManifestOptions & { subject?: string } = {},
): { rows: ManifestRow[]; errors: ManifestIssue[] } {
  const subject = opts.subject ?? "manifest";
  const schema = opts.strict === false ? looseRowSchema : manifestRowSchema;
  const rows: ManifestRow[] = [];
  const errors: ManifestIssue[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  const fail = (line: number, message: string) => {
    if (opts.onError === "skip") errors.push({ line, message });
    else throw new L3kitError(message, { subject: `${subject} line ${line}`, reason: "bad-manifest-row" });
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === "" || raw.startsWith("//")) continue;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      fail(line, `invalid JSON (${(err as Error).message})`);
      continue;
    }
    const res = schema.safeParse(value);
    if (!res.success) {
      fail(line, formatIssues(res.error.issues, value));
      continue;
    }
    const row = res.data as ManifestRow;
    const first = seen.get(row.id);
    if (first !== undefined) {
      fail(line, `field 'id': duplicate id '${row.id}' (first on line ${first})`);
      continue;
    }
    seen.set(row.id, line);
    rows.push(row);
  }
  return { rows, errors };
}

/** Validates one row; returns a readable message or null when it is fine. */
export function checkManifestRow(row: unknown): string | null {
  const res = manifestRowSchema.safeParse(row);
  return res.success ? null : formatIssues(res.error.issues, row);
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing (missing)";
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return typeof v;
}

function fieldName(p: readonly PropertyKey[]): string {
  let s = "";
  for (const k of p) s += typeof k === "number" ? `[${k}]` : s === "" ? String(k) : `.${String(k)}`;
  return s;
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of p) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function formatIssues(issues: readonly z.core.$ZodIssue[], value: unknown): string {
  return issues
    .map((iss) => {
      if (iss.code === "unrecognized_keys") {
        const where = iss.path.length ? ` in '${fieldName(iss.path)}'` : "";
        return iss.keys.map((k) => `unknown field '${k}'${where}`).join("; ");
      }
      const field = iss.path.length ? `field '${fieldName(iss.path)}': ` : "";
      if (iss.code === "invalid_type") return `${field}expected ${iss.expected}, got ${describe(valueAt(value, iss.path))}`;
      return `${field}${iss.message.replace(/^Invalid input: /, "")}`;
    })
    .join("; ");
}

/**
 * Writes rows as JSONL atomically, with paths relative to the manifest's folder (POSIX separators).
 * Rows are validated first and duplicate ids refused, so a saved manifest always loads.
 */
export async function saveManifest(file: string, rows: readonly ManifestRow[]): Promise<{ file: string; hash: string }> {
  const dir = path.dirname(path.resolve(file));
  const seen = new Map<string, number>();
  const out: ManifestRow[] = rows.map((r, i) => {
    const msg = checkManifestRow(r);
    if (msg) throw new L3kitError(`row ${i} (id '${r.id}'): ${msg}`, { subject: file, reason: "bad-manifest-row" });
    const first = seen.get(r.id);
    if (first !== undefined)
      throw new L3kitError(`duplicate id '${r.id}' in rows ${first} and ${i}`, { subject: file, reason: "duplicate-id" });
    seen.set(r.id, i);
    return { ...r, path: relativePath(dir, r.path) };
  });
  await writeFileAtomic(file, out.map((r) => JSON.stringify(r)).join("\n") + (out.length ? "\n" : ""));
  return { file: path.resolve(file), hash: manifestHash(out) };
}

function relativePath(dir: string, p: string): string {
  const abs = path.resolve(dir, p);
  return path.relative(dir, abs).split(path.sep).join("/");
}

/** Ids that occur more than once, with the row indices of each occurrence. */
export function findDuplicateIds(rows: readonly Pick<ManifestRow, "id">[]): Array<{ id: string; indices: number[] }> {
  const byId = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const list = byId.get(r.id);
    if (list) list.push(i);
    else byId.set(r.id, [i]);
  });
  return [...byId].filter(([, idx]) => idx.length > 1).map(([id, indices]) => ({ id, indices }));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) o[k] = canonical(x);
    }
    return o;
  }
  return v;
}

/**
 * sha256 (hex) of a manifest's canonical content: rows in order, keys sorted, one JSON per line, so
 * formatting and key order do not change it. Given a file (or a loaded {@link Manifest}) the paths are
 * hashed as written in the file; given rows, as they are in the rows.
 */
export function manifestHash(input: string | readonly ManifestRow[] | Manifest): string {
  if (typeof input === "string") {
    const { rows } = parseManifest(readFileSync(input, "utf8"), { subject: path.basename(input), strict: false });
    return manifestHash(rows);
  }
  if (!Array.isArray(input)) return (input as Manifest).hash;
  const h = createHash("sha256");
  for (const r of input as readonly ManifestRow[]) h.update(`${JSON.stringify(canonical(r))}\n`);
  return h.digest("hex");
}

/** Counts for a quick look at a manifest. */
export interface ManifestSummary {
  rows: number;
  perSplit: Record<string, number>;
  perLabel: Record<string, number>;
  /** Rows without a label. */
  unlabelled: number;
  totalDurationSec: number;
  withAudio: number;
  /** Rows that have at least one box frame. */
  withBoxes: number;
  /** Boxes over all rows and frames (sounding + distractors). */
  boxes: number;
}

/** Counts per split and label, total duration, rows with audio and boxes. */
export function manifestSummary(rows: readonly ManifestRow[]): ManifestSummary {
  const s: ManifestSummary = {
    rows: rows.length,
    perSplit: {},
    perLabel: {},
    unlabelled: 0,
    totalDurationSec: 0,
    withAudio: 0,
    withBoxes: 0,
    boxes: 0,
  };
  for (const r of rows) {
    s.perSplit[r.split] = (s.perSplit[r.split] ?? 0) + 1;
    if (r.label === undefined) s.unlabelled++;
    else s.perLabel[r.label] = (s.perLabel[r.label] ?? 0) + 1;
    s.totalDurationSec += r.durationSec;
    if (r.hasAudio) s.withAudio++;
    if (r.boxes && r.boxes.length > 0) {
      s.withBoxes++;
      for (const f of r.boxes) s.boxes += f.sounding.length + (f.distractors?.length ?? 0);
    }
  }
  return s;
}
