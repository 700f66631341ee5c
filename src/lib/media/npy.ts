/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): read any C-order numeric array, write
 * float32/float64/int/uint arrays. Used for reference fixtures and for embedding outputs.
 */
import { promises as fsp } from "node:fs";
import { L3kitError, writeFileAtomic } from "../util";

/** The typed arrays .npy data is read into. */
export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A parsed .npy array: `data` in C (row-major) order, `shape` as numpy gives it. */
export interface NpyArray {
  /** numpy's dtype string, normalised to little-endian / byte order "|", e.g. "<f4", "|u1", "<i8". */
  dtype: string;
  shape: number[];
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type Ctor = { new (buffer: ArrayBuffer): NpyData; BYTES_PER_ELEMENT: number };
const TYPES: Record<string, Ctor> = {
  f4: Float32Array,
  f8: Float64Array,
  i1: Int8Array,
  u1: Uint8Array,
  b1: Uint8Array,
  i2: Int16Array,
  u2: Uint16Array,
  i4: Int32Array,
  u4: Uint32Array,
  i8: BigInt64Array,
  u8: BigUint64Array,
};

const fail = (subject: string, message: string) => new L3kitError(message, { subject, reason: "bad-npy" });

/** Parses the bytes of a .npy file. `subject` (a path) names the file in errors. */
export function parseNpy(bytes: Uint8Array, subject = "npy"): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail(subject, "not a .npy file (bad magic)");
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw fail(subject, "truncated .npy header");
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw fail(subject, `unsupported .npy version ${major}.${bytes[7]}`);
  }
  if (headerStart + headerLen > bytes.length) throw fail(subject, "truncated .npy header");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw fail(subject, `cannot parse .npy header ${JSON.stringify(header.trim())}`);
  if (fortran === "True") throw fail(subject, "Fortran-order .npy arrays are not supported");
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, "")));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw fail(subject, `bad shape (${shapeText})`);
  const order = descr[0]!;
  const kind = descr.slice(1);
  const ctor = TYPES[kind];
  if (!ctor || !"<>|=".includes(order)) throw fail(subject, `unsupported dtype ${descr}`);
  const size = ctor.BYTES_PER_ELEMENT;
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLen;
  if (start + count * size > bytes.length) throw fail(subject, `data is truncated: ${bytes.length - start} bytes for ${count} × ${descr}`);
  const ab = new ArrayBuffer(count * size);
  const raw = new Uint8Array(ab);
  raw.set(bytes.subarray(start, start + count * size));
  if (order === ">" && size > 1) {
    for (let i = 0; i < raw.length; i += size) raw.subarray(i, i + size).reverse();
  }
  return { dtype: `${size === 1 ? "|" : "<"}${kind}`, shape, data: new ctor(ab) };
}

/** Reads a .npy file. */
export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(path);
  } catch (err) {
    throw new L3kitError(`cannot read .npy file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      subject: path,
      reason: "missing",
      cause: err,
    });
  }
  return parseNpy(bytes, path);
}

function dtypeOf(data: NpyData): string {
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Float64Array) return "<f8";
  if (data instanceof Int8Array) return "|i1";
  if (data instanceof Uint8Array) return "|u1";
  if (data instanceof Int16Array) return "<i2";
  if (data instanceof Uint16Array) return "<u2";
  if (data instanceof Int32Array) return "<i4";
  if (data instanceof Uint32Array) return "<u4";
  if (data instanceof BigInt64Array) return "<i8";
  return "<u8";
}

/** Encodes an array as .npy (version 1.0, header padded to 64 bytes, little-endian). `shape` defaults to `[data.length]`. */
export function encodeNpy(data: NpyData, shape: readonly number[] = [data.length]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length)
    throw new L3kitError(`shape [${shape.join(", ")}] holds ${count} values, data has ${data.length}`, {
      subject: "npy",
      reason: "bad-shape",
    });
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${dtypeOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = `${header}${" ".repeat(pad % 64)}\n`;
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  out.set(body, 10 + header.length);
  // typed arrays are little-endian on every platform Node supports in practice; swap if not
  const probe = new Uint8Array(new Uint16Array([1]).buffer);
  if (probe[0] === 0 && data.BYTES_PER_ELEMENT > 1) {
    const size = data.BYTES_PER_ELEMENT;
    for (let i = 10 + header.length; i < out.length; i += size) out.subarray(i, i + size).reverse();
  }
  return out;
}

/** Writes an array as a .npy file, atomically. */
export async function writeNpy(path: string, data: NpyData, shape: readonly number[] = [data.length]): Promise<void> {
  await writeFileAtomic(path, encodeNpy(data, shape));
}
