import { promises as fsp } from "node:fs";
import { L3kitError } from "../../util";
import type { Box, ManifestRow } from "../types";

/** One VGG-SS annotation: a clip id (`<youtube_id>_<start:06d>`), its class and its valid boxes. */
export interface VggssEntry {
  id: string;
  label: string;
  boxes: Box[];
}

/** A box dropped while loading, with why. */
export interface DroppedBox {
  id: string;
  /** Index of the box in the entry's `bbox` list. */
  index: number;
  box: unknown;
  reason: "malformed" | "not-finite" | "out-of-range" | "empty-box";
}

export interface VggssBoxes {
  entries: VggssEntry[];
  byId: Map<string, VggssEntry>;
  dropped: DroppedBox[];
  totalBoxes: number;
  keptBoxes: number;
  /** Entries left with no valid box (kept in `entries` with `boxes: []`). */
  emptyEntries: number;
}

/**
 * Loads VGG-SS-style box annotations (`[{file, class, bbox: [[x1,y1,x2,y2], ...]}]`, normalised
 * coordinates) and drops corrupt boxes: non-finite values, values outside [0, 1] by more than
 * `tolerance` (others are clamped), zero or negative width or height. Reports what it dropped.
 */
export async function loadVggssBoxes(file: string, opts: { tolerance?: number } = {}): Promise<VggssBoxes> {
  const tol = opts.tolerance ?? 1e-3;
  let data: unknown;
  try {
    data = JSON.parse(await fsp.readFile(file, "utf8"));
  } catch (err) {
    throw new L3kitError(`cannot read box annotations: ${(err as Error).message}`, {
      subject: file,
      reason: "bad-annotations",
      cause: err,
    });
  }
  if (!Array.isArray(data))
    throw new L3kitError("expected a JSON array of {file, class, bbox}", { subject: file, reason: "bad-annotations" });
  const out: VggssBoxes = { entries: [], byId: new Map(), dropped: [], totalBoxes: 0, keptBoxes: 0, emptyEntries: 0 };
  data.forEach((e: unknown, i: number) => {
    const rec = e as { file?: unknown; class?: unknown; bbox?: unknown };
    if (!rec || typeof rec.file !== "string" || !Array.isArray(rec.bbox)) {
      throw new L3kitError(`entry ${i}: expected {file: string, class: string, bbox: number[][]}`, {
        subject: file,
        reason: "bad-annotations",
      });
    }
    const id = rec.file.replace(/\.[^.]+$/, "");
    const label = typeof rec.class === "string" ? rec.class : "";
    const boxes: Box[] = [];
    rec.bbox.forEach((b: unknown, index: number) => {
      out.totalBoxes++;
      const res = checkBox(b, tol);
      if (typeof res === "string") out.dropped.push({ id, index, box: b, reason: res });
      else boxes.push(label ? { ...res, label } : res);
    });
    out.keptBoxes += boxes.length;
    if (boxes.length === 0) out.emptyEntries++;
    const entry = { id, label, boxes };
    out.entries.push(entry);
    out.byId.set(id, entry);
  });
  return out;
}

function checkBox(b: unknown, tol: number): Box | DroppedBox["reason"] {
  if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === "number")) return "malformed";
  const v = b as number[];
  if (!v.every(Number.isFinite)) return "not-finite";
  if (!v.every((x) => x >= -tol && x <= 1 + tol)) return "out-of-range";
  const [x1, y1, x2, y2] = v.map((x) => Math.min(1, Math.max(0, x))) as [number, number, number, number];
  if (!(x2 > x1 && y2 > y1)) return "empty-box";
  return { x1, y1, x2, y2 };
}

/**
 * Attaches boxes to manifest rows by id, as one {@link BoxFrame} at time `time` ("middle" = half the
 * row's duration, the frame VGG-SS annotates; default). Rows without a match are returned unchanged.
 */
export function attachBoxes(
  rows: readonly ManifestRow[],
  boxes: Pick<VggssBoxes, "byId"> | Map<string, Pick<VggssEntry, "boxes">>,
  opts: { time?: "middle" | number } = {},
): { rows: ManifestRow[]; matched: number; unmatched: string[] } {
  const byId = boxes instanceof Map ? boxes : boxes.byId;
  let matched = 0;
  const unmatched: string[] = [];
  const out = rows.map((r) => {
    const e = byId.get(r.id);
    if (!e || e.boxes.length === 0) {
      unmatched.push(r.id);
      return r;
    }
    matched++;
    const t = opts.time === undefined || opts.time === "middle" ? r.durationSec / 2 : opts.time;
    return { ...r, boxes: [{ t, sounding: e.boxes.map((b) => ({ ...b })) }] };
  });
  return { rows: out, matched, unmatched };
}
