/** Decodes a whole clip with ffmpeg (every frame in order, and mono f32 audio) for the synth tests. */
import { execFile } from "node:child_process";
import { ffmpegPaths } from "../../src/lib/media/ffmpeg";

function run(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(ffmpegPaths().ffmpeg, args, { encoding: "buffer", maxBuffer: 1 << 28 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ffmpeg ${args.join(" ")}: ${stderr.toString()}`));
      else resolve(stdout);
    });
  });
}

/** All frames of a file as rgb24 buffers (no resampling in time: frame i is the i-th coded frame). */
export async function decodeAllFrames(file: string, width: number, height: number): Promise<Uint8Array[]> {
  const buf = await run([
    "-hide_banner",
    "-loglevel",
    "error",
    "-i",
    file,
    "-map",
    "0:v:0",
    "-vsync",
    "0",
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "pipe:1",
  ]);
  const n = width * height * 3;
  const frames: Uint8Array[] = [];
  for (let o = 0; o + n <= buf.length; o += n) frames.push(new Uint8Array(buf.subarray(o, o + n)));
  return frames;
}

/** The whole audio track, mono float32 at `sampleRate`. */
export async function decodeAllAudio(file: string, sampleRate = 48000): Promise<Float32Array> {
  const buf = await run([
    "-hide_banner",
    "-loglevel",
    "error",
    "-i",
    file,
    "-map",
    "0:a:0",
    "-ac",
    "1",
    "-ar",
    String(sampleRate),
    "-f",
    "f32le",
    "pipe:1",
  ]);
  const ab = new ArrayBuffer(buf.length);
  new Uint8Array(ab).set(buf);
  return new Float32Array(ab);
}
