/**
 * A minimal `.npz` writer: an uncompressed ("stored") zip of `.npy` members, which `numpy.load` reads
 * (OpenL3 writes its embeddings the same way, `embedding` + `timestamps`). The CRC-32 is node:zlib's
 * (on an AMD EPYC 23× faster than the table loop it replaced: 8 MiB 45.5 → 1.9 ms, same values).
 */
import { crc32 } from "node:zlib";
import { encodeNpy, type NpyData } from "../media";

/** Encodes named arrays as an .npz file (member `name.npy` per entry). */
export function encodeNpz(arrays: Record<string, { data: NpyData; shape: readonly number[] }>): Uint8Array {
  const enc = new TextEncoder();
  const members = Object.entries(arrays).map(([name, a]) => {
    const body = encodeNpy(a.data, a.shape);
    return { name: enc.encode(`${name}.npy`), body, crc: crc32(body) };
  });
  const localSize = members.reduce((s, m) => s + 30 + m.name.length + m.body.length, 0);
  const centralSize = members.reduce((s, m) => s + 46 + m.name.length, 0);
  const out = new Uint8Array(localSize + centralSize + 22);
  const v = new DataView(out.buffer);
  let p = 0;
  const offsets: number[] = [];
  for (const m of members) {
    offsets.push(p);
    v.setUint32(p, 0x04034b50, true);
    v.setUint16(p + 4, 20, true); // version needed
    v.setUint16(p + 6, 0, true); // flags
    v.setUint16(p + 8, 0, true); // stored
    v.setUint16(p + 10, 0, true); // time
    v.setUint16(p + 12, 0x21, true); // date 1980-01-01
    v.setUint32(p + 14, m.crc, true);
    v.setUint32(p + 18, m.body.length, true);
    v.setUint32(p + 22, m.body.length, true);
    v.setUint16(p + 26, m.name.length, true);
    v.setUint16(p + 28, 0, true);
    out.set(m.name, p + 30);
    out.set(m.body, p + 30 + m.name.length);
    p += 30 + m.name.length + m.body.length;
  }
  const cdStart = p;
  members.forEach((m, i) => {
    v.setUint32(p, 0x02014b50, true);
    v.setUint16(p + 4, 20, true);
    v.setUint16(p + 6, 20, true);
    v.setUint16(p + 8, 0, true);
    v.setUint16(p + 10, 0, true);
    v.setUint16(p + 12, 0, true);
    v.setUint16(p + 14, 0x21, true);
    v.setUint32(p + 16, m.crc, true);
    v.setUint32(p + 20, m.body.length, true);
    v.setUint32(p + 24, m.body.length, true);
    v.setUint16(p + 28, m.name.length, true);
    v.setUint16(p + 30, 0, true); // extra
    v.setUint16(p + 32, 0, true); // comment
    v.setUint16(p + 34, 0, true); // disk
    v.setUint16(p + 36, 0, true); // internal attrs
    v.setUint32(p + 38, 0, true); // external attrs
    v.setUint32(p + 42, offsets[i] as number, true);
    out.set(m.name, p + 46);
    p += 46 + m.name.length;
  });
  v.setUint32(p, 0x06054b50, true);
  v.setUint16(p + 4, 0, true);
  v.setUint16(p + 6, 0, true);
  v.setUint16(p + 8, members.length, true);
  v.setUint16(p + 10, members.length, true);
  v.setUint32(p + 12, p - cdStart, true);
  v.setUint32(p + 16, cdStart, true);
  v.setUint16(p + 20, 0, true);
  return out;
}
