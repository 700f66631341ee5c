import { promises as fsp } from "node:fs";
import { L3kitError, writeFileAtomic } from "../util";

/** Named float32 tensors as plain data. */
export type TensorBundle = Record<string, { shape: number[]; data: Float32Array }>;

const MAGIC = "L3KB1\n";

/**
 * Serialises named float32 arrays into one buffer: a magic line, a JSON header line
 * (`{name: {shape, offset, length}}`), then the raw little-endian data, 4-byte aligned.
 */
export function encodeBundle(bundle: TensorBundle): Uint8Array {
  const names = Object.keys(bundle).sort();
  const header: Record<string, { shape: number[]; offset: number; length: number }> = {};
  let offset = 0;
  for (const n of names) {
    const e = bundle[n] as { shape: number[]; data: Float32Array };
    header[n] = { shape: e.shape, offset, length: e.data.length };
    offset += e.data.length;
  }
  let head = `${MAGIC}${JSON.stringify(header)}\n`;
  while (Buffer.byteLength(head) % 4 !== 0) head = `${head.slice(0, -1)} \n`;
  const headBytes = Buffer.from(head, "utf8");
  const out = new Uint8Array(headBytes.length + offset * 4);
  out.set(headBytes, 0);
  const body = new Float32Array(out.buffer, headBytes.length, offset);
  for (const n of names) body.set((bundle[n] as { data: Float32Array }).data, header[n]?.offset);
  return out;
}

/** Parses {@link encodeBundle}'s output. */
export function decodeBundle(bytes: Uint8Array, subject = "bundle"): TensorBundle {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 1 << 22)).toString("latin1");
  if (!text.startsWith(MAGIC)) throw new L3kitError("not an l3kit tensor bundle", { subject, reason: "corrupt" });
  const end = text.indexOf("\n", MAGIC.length);
  if (end < 0) throw new L3kitError("truncated header", { subject, reason: "truncated" });
  const header = JSON.parse(text.slice(MAGIC.length, end)) as Record<string, { shape: number[]; offset: number; length: number }>;
  const start = end + 1;
  const copy = bytes.slice(start); // aligned copy
  const body = new Float32Array(copy.buffer, 0, Math.floor(copy.length / 4));
  const out: TensorBundle = {};
  for (const [name, h] of Object.entries(header)) {
    if (h.offset + h.length > body.length) throw new L3kitError(`data of '${name}' is cut short`, { subject, reason: "truncated" });
    out[name] = { shape: h.shape, data: body.slice(h.offset, h.offset + h.length) };
  }
  return out;
}

/** Writes a bundle atomically. */
export async function saveBundle(file: string, bundle: TensorBundle): Promise<void> {
  await writeFileAtomic(file, encodeBundle(bundle));
}

/** Reads a bundle. */
export async function loadBundle(file: string): Promise<TensorBundle> {
  return decodeBundle(new Uint8Array(await fsp.readFile(file)), file);
}
