/**
 * Hand-written on purpose: wavefile 11.0.0 writes the same bytes when given the int16 samples computed
 * as here, but slower (AMD EPYC, min of 5 interleaved reps, 10 s at 48 kHz, `nice -n 15 npx tsx
 * scratch/wav-bench.ts`, not kept: mono 12.3 vs 273.3 ms, stereo 44.6 vs 525.6 ms); its own float
 * conversion (`fromScratch("32f")` + `toBitDepth("16")`) takes 2.9 / 6.9 s and changes half the samples.
 */
import { ConfigError } from "../util";
import { escapeHtml } from "./figure";

/**
 * Encodes audio as a 16-bit PCM WAV file. `samples` is mono, or one Float32Array per channel
 * (downmixed to mono by averaging unless `keepChannels`). Values are clipped to [-1, 1].
 */
export function encodeWav(samples: Float32Array | Float32Array[], sampleRate: number, opts: { keepChannels?: boolean } = {}): Uint8Array {
  if (!(Number.isInteger(sampleRate) && sampleRate > 0)) {
    throw new ConfigError(`sampleRate must be a positive integer, got ${sampleRate}`, { subject: "encodeWav", reason: "bad-rate" });
  }
  let channels: Float32Array[] = Array.isArray(samples) ? samples : [samples];
  if (channels.length === 0) throw new ConfigError("no channels", { subject: "encodeWav", reason: "empty" });
  const n = channels[0]!.length;
  if (channels.some((c) => c.length !== n))
    throw new ConfigError("channels differ in length", { subject: "encodeWav", reason: "bad-shape" });
  if (channels.length > 1 && !opts.keepChannels) {
    const mono = new Float32Array(n);
    for (const c of channels) for (let i = 0; i < n; i++) mono[i]! += c[i]! / channels.length;
    channels = [mono];
  }
  const nch = channels.length;
  const dataBytes = n * nch * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write("RIFF", 0, "latin1");
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write("WAVE", 8, "latin1");
  buf.write("fmt ", 12, "latin1");
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(nch, 22);
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * nch * 2, 28); // byte rate
  buf.writeUInt16LE(nch * 2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write("data", 36, "latin1");
  buf.writeUInt32LE(dataBytes, 40);
  let off = 44;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < nch; c++) {
      let v = channels[c]![i]!;
      v = Number.isNaN(v) ? 0 : Math.min(1, Math.max(-1, v));
      buf.writeInt16LE(Math.round(v < 0 ? v * 32768 : v * 32767), off);
      off += 2;
    }
  }
  return buf;
}

/**
 * An HTML `<audio controls>` player with the clip inlined as a WAV `data:` URI. In a notebook:
 * `import { show, audioPlayer } from "l3kit"; show(audioPlayer(samples, 48000));`.
 * A clip of n seconds at 48 kHz adds about n × 128 KB to the notebook; pass `maxSeconds` to cut.
 */
export function audioPlayer(
  samples: Float32Array | Float32Array[],
  sampleRate: number,
  opts: { maxSeconds?: number; normalize?: boolean; label?: string } = {},
): string {
  let chans = Array.isArray(samples) ? samples : [samples];
  if (opts.maxSeconds !== undefined) {
    const n = Math.max(0, Math.floor(opts.maxSeconds * sampleRate));
    chans = chans.map((c) => c.subarray(0, n));
  }
  if (opts.normalize) {
    let peak = 0;
    for (const c of chans) for (let i = 0; i < c.length; i++) peak = Math.max(peak, Math.abs(c[i]!));
    if (peak > 0) chans = chans.map((c) => c.map((v) => v / peak));
  }
  const b64 = Buffer.from(encodeWav(chans, sampleRate)).toString("base64");
  const label = opts.label ? `<div style="font:12px sans-serif">${escapeHtml(opts.label)}</div>` : "";
  return `${label}<audio controls preload="metadata" src="data:audio/wav;base64,${b64}"></audio>`;
}
