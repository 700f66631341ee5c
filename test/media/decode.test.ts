import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ffmpegPaths,
  liveMediaProcesses,
  MediaError,
  mediaConcurrency,
  probeMedia,
  readAudio,
  readFrame,
  readFrames,
  readSamples,
  setMediaConcurrency,
} from "../../src/lib/media";
import { needsRealdata, realdata, tempDir } from "../helpers";

const rd = needsRealdata();
const bento = realdata("openl3", "video", "bento.mp4");
const wav = (name: string) => realdata("openl3", "audio", `${name}.wav`);

const tmp = tempDir("l3kit-media-");
const file = (name: string) => path.join(tmp.dir, name);
/** 3 s, 10 fps, 64x48 lossless H.264 (GOP 10, B-frames) whose frame N is grey with luma 16 + 6N; AAC audio silent except a 1 kHz burst at [1.5, 1.52) s. */
const IDX = file("idx.mp4");
const IDX_NO_AUDIO = file("idx-noaudio.mp4");
/** IDX with its audio track starting 0.3 s late (an mp4 edit list): the burst is at 1.8 s. */
const IDX_LATE_AUDIO = file("idx-late-audio.mp4");

function ffmpeg(args: string[]): void {
  execFileSync(ffmpegPaths().ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

/** Frame index encoded in the grey level (limited-range luma 16 + 6N → RGB (Y − 16)·255/219). */
const frameIndex = (f: { data: Uint8Array }) => Math.round((f.data[0]! * 219) / 255 / 6);

async function expectMediaError(p: Promise<unknown>, reason: string, subject: string, text?: RegExp): Promise<MediaError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MediaError, `expected a MediaError, got ${err}`);
    assert.equal(err.reason, reason, err.message);
    assert.equal(err.subject, subject);
    assert.ok(err.message.startsWith(`${subject}: `), err.message);
    if (text) assert.match(err.message, text);
    return err;
  }
  assert.fail(`expected a MediaError (${reason}) for ${subject}`);
}

before(() => {
  ffmpeg([
    "-f",
    "lavfi",
    "-i",
    "color=c=black:s=64x48:r=10:d=3,format=yuv420p,geq=lum='16+6*N':cb=128:cr=128",
    "-f",
    "lavfi",
    "-i",
    "aevalsrc='if(between(t,1.5,1.52),0.8*sin(2*PI*1000*t),0)':s=48000:d=3",
    "-c:v",
    "libx264",
    "-qp",
    "0",
    "-g",
    "10",
    "-bf",
    "2",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-b:a",
    "96k",
    IDX,
  ]);
  ffmpeg(["-i", IDX, "-an", "-c:v", "copy", IDX_NO_AUDIO]);
  ffmpeg(["-i", IDX, "-itsoffset", "0.3", "-i", IDX, "-map", "0:v", "-map", "1:a", "-c", "copy", IDX_LATE_AUDIO]);
});

after(() => tmp.cleanup());

describe("binaries and pool", () => {
  test("ffmpegPaths gives executable binaries; a missing override is a clear error", () => {
    const p = ffmpegPaths();
    for (const bin of [p.ffmpeg, p.ffprobe]) fs.accessSync(bin, fs.constants.X_OK);
    const saved = process.env.FFMPEG_PATH;
    process.env.FFMPEG_PATH = "/nonexistent/ffmpeg";
    try {
      assert.throws(
        () => ffmpegPaths(),
        (err: unknown) => err instanceof MediaError && err.reason === "no-ffmpeg" && /FFMPEG_PATH/.test(err.message),
      );
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH;
      else process.env.FFMPEG_PATH = saved;
    }
  });

  test("a binary without its exec bit (npm ffprobe ships 0644) is chmodded", () => {
    const fake = file("ffprobe-0644");
    fs.writeFileSync(fake, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
    fs.chmodSync(fake, 0o644);
    const saved = process.env.FFPROBE_PATH;
    process.env.FFPROBE_PATH = fake;
    try {
      assert.equal(ffmpegPaths().ffprobe, fake);
      assert.ok(fs.statSync(fake).mode & 0o100);
    } finally {
      if (saved === undefined) delete process.env.FFPROBE_PATH;
      else process.env.FFPROBE_PATH = saved;
    }
  });

  test("setMediaConcurrency bounds the number of live ffmpeg processes", rd, async () => {
    const before = mediaConcurrency();
    setMediaConcurrency(1);
    let peak = 0;
    const timer = setInterval(() => {
      peak = Math.max(peak, liveMediaProcesses());
    }, 1);
    try {
      const clips = await Promise.all(
        [wav("chirp_mono"), wav("chirp_stereo"), wav("chirp_44k"), wav("silence")].map((f) => readAudio(f, {})),
      );
      assert.equal(clips.length, 4);
      assert.equal(peak, 1);
    } finally {
      clearInterval(timer);
      setMediaConcurrency(before);
    }
    assert.throws(() => setMediaConcurrency(0), RangeError);
  });

  test("the per-call timeout kills a hung ffmpeg/ffprobe", async () => {
    // binaries that hang (but answer fluent-ffmpeg's capability queries with the real ffmpeg)
    const real = ffmpegPaths().ffmpeg;
    const hang = (name: string) => {
      const p = file(name);
      fs.writeFileSync(
        p,
        `#!/bin/sh\nfor a in "$@"; do case "$a" in -formats|-codecs|-encoders|-filters) exec "${real}" "$@";; esac; done\nexec sleep 30\n`,
        { mode: 0o755 },
      );
      return p;
    };
    const saved = [process.env.FFMPEG_PATH, process.env.FFPROBE_PATH];
    process.env.FFMPEG_PATH = hang("ffmpeg-hang");
    process.env.FFPROBE_PATH = hang("ffprobe-hang");
    try {
      const t0 = Date.now();
      await expectMediaError(readAudio(IDX, { timeoutMs: 300 }), "timeout", IDX, /300 ms/);
      await expectMediaError(readFrames(IDX, [1], { width: 8, height: 8 }, { timeoutMs: 300 }), "timeout", IDX);
      await expectMediaError(probeMedia(IDX, { timeoutMs: 300 }), "timeout", IDX);
      assert.ok(Date.now() - t0 < 10_000, "killed long before the 30 s sleep ends");
      assert.equal(liveMediaProcesses(), 0);
    } finally {
      for (const [k, v] of [
        ["FFMPEG_PATH", saved[0]],
        ["FFPROBE_PATH", saved[1]],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe("probeMedia", () => {
  test("bento.mp4: H.264 320x568 10 fps + AAC 44.1 kHz", rd, async () => {
    const info = await probeMedia(bento);
    assert.equal(info.path, bento);
    assert.ok(Math.abs(info.durationSec - 1.1) < 0.01);
    assert.deepEqual(info.video, { width: 320, height: 568, fps: 10, codec: "h264", frames: 11 });
    assert.equal(info.audio?.codec, "aac");
    assert.equal(info.audio?.sampleRate, 44100);
    assert.ok(info.audio!.channels >= 1);
    assert.match(info.formatName, /mp4/);
    assert.equal(info.sizeBytes, fs.statSync(bento).size);
  });

  test("a WAV has audio and no video", rd, async () => {
    const info = await probeMedia(wav("chirp_stereo"));
    assert.equal(info.video, null);
    assert.deepEqual(info.audio, { sampleRate: 48000, channels: 2, codec: "pcm_s16le" });
    assert.ok(Math.abs(info.durationSec - 2) < 1e-6);
  });
});

describe("readFrames", () => {
  test("bento.mp4 decodes to the requested size, not blank, frames change over time", rd, async () => {
    const frames = await readFrames(bento, [0, 0.5, 1.05], { width: 224, height: 224 });
    assert.equal(frames.length, 3);
    for (const f of frames) {
      assert.deepEqual([f.width, f.height, f.data.length], [224, 224, 224 * 224 * 3]);
      assert.ok(
        f.data.some((v) => v > 20),
        "not all dark",
      );
    }
    assert.notDeepEqual(frames[0]!.data, frames[2]!.data);
    const keep = await readFrame(bento, 0.5, { shortSide: 112 });
    assert.deepEqual([keep.width, keep.height], [112, Math.round((568 * 112) / 320)]);
  });

  test("returns the frame shown at each time (last frame at or before t), in order, duplicates allowed", async () => {
    const times = [2.95, 0, 0.05, 0.1, 0.0999, 0.1001, 1.0, 1.05, 1.0, 2.9, 1.5, 0.3, 2.999, 0.35];
    const expected = times.map((t) => Math.floor(t * 10 + 1e-9));
    for (const windowSec of [undefined, 0.02]) {
      // 0.02 s is shorter than a frame: most windows are empty and the call falls back to a full decode
      const frames = await readFrames(IDX, times, { width: 16, height: 12 }, { windowSec });
      assert.deepEqual(
        frames.map((f) => frameIndex(f)),
        expected,
        `windowSec ${windowSec}`,
      );
      for (const f of frames)
        assert.ok(
          f.data.every((v) => v === f.data[0]),
          "each frame is one flat grey",
        );
    }
    const fps = await readFrames(IDX, [2.05, 0.55], { width: 16, height: 12 }, { fps: 10 });
    assert.deepEqual(
      fps.map((f) => frameIndex(f)),
      [20, 5],
    );
    assert.deepEqual(await readFrames(IDX, [], { width: 4, height: 4 }), []);
  });

  test("a time past the end of the video is 'too-short'; bad arguments are config errors", async () => {
    await expectMediaError(readFrame(IDX, 4.5, { width: 8, height: 8 }), "too-short", IDX, /t=4\.5/);
    await assert.rejects(readFrames(IDX, [-1], { width: 8, height: 8 }), /finite numbers >= 0/);
    await assert.rejects(readFrames(IDX, [1], { width: 0, height: 8 }), /frame size/);
  });
});

describe("readAudio", () => {
  test("bento.mp4 audio: 48 kHz mono with energy", rd, async () => {
    const clip = await readAudio(bento, {});
    assert.equal(clip.sampleRate, 48000);
    assert.ok(Math.abs(clip.samples.length - 48000) < 1500, `${clip.samples.length} samples`);
    const rms = Math.sqrt(clip.samples.reduce((s, v) => s + v * v, 0) / clip.samples.length);
    assert.ok(rms > 1e-3, `rms ${rms}`);
    const one = await readAudio(bento, { durationSec: 1, sampleRate: 16000 });
    assert.equal(one.samples.length, 16000);
  });

  test("every openl3 WAV loads with sensible lengths and values", rd, async () => {
    const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    const mono = await readAudio(wav("chirp_mono"), {});
    const stereo = await readAudio(wav("chirp_stereo"), {});
    const k44 = await readAudio(wav("chirp_44k"), {});
    const oneSec = await readAudio(wav("chirp_1s"), {});
    const silence = await readAudio(wav("silence"), {});
    assert.equal(mono.samples.length, 96000);
    assert.equal(stereo.samples.length, 96000);
    assert.equal(oneSec.samples.length, 48000);
    assert.ok(Math.abs(k44.samples.length - 96000) <= 2, `${k44.samples.length}`);
    assert.equal(silence.samples.length, 96000);
    assert.ok(silence.samples.every((v) => v === 0));
    for (const c of [mono, stereo, k44, oneSec]) {
      assert.ok(rms(c.samples) > 0.05, "a chirp has energy");
      assert.ok(Math.max(...c.samples.map(Math.abs)) <= 1);
      assert.equal(c.paddedSamples, 0);
      assert.equal(c.truncated, false);
    }
    // chirp_stereo carries chirp_mono in both channels: the downmix gives it back
    let maxDiff = 0;
    for (let i = 0; i < mono.samples.length; i++) maxDiff = Math.max(maxDiff, Math.abs(stereo.samples[i]! - mono.samples[i]!));
    assert.ok(maxDiff < 1e-3, `stereo vs mono ${maxDiff}`);
  });

  test("stereo is downmixed to the mean of the channels", async () => {
    const st = file("lr.wav");
    ffmpeg(["-f", "lavfi", "-i", "aevalsrc='0.6*sin(2*PI*440*t)|0':s=48000:d=0.5", "-c:a", "pcm_f32le", st]);
    const clip = await readAudio(st, {});
    const peak = Math.max(...clip.samples.map(Math.abs));
    assert.ok(Math.abs(peak - 0.3) < 1e-3, `peak ${peak}: (L + R) / 2`);
  });

  test("startSec is in seconds: the slice equals the whole file's samples from startSec·rate", rd, async () => {
    const whole = await readAudio(wav("chirp_mono"), {});
    const part = await readAudio(wav("chirp_mono"), { startSec: 0.5, durationSec: 1 });
    assert.equal(part.samples.length, 48000);
    assert.deepEqual(part.samples, whole.samples.subarray(24000, 72000));
    const lead = await readAudio(wav("chirp_mono"), { startSec: -0.25, durationSec: 1 });
    assert.equal(lead.paddedSamples, 12000);
    assert.ok(lead.samples.subarray(0, 12000).every((v) => v === 0));
    assert.deepEqual(lead.samples.subarray(12000), whole.samples.subarray(0, 36000));
    const tail = await readAudio(wav("chirp_mono"), { startSec: 1.5, durationSec: 1 });
    assert.equal(tail.paddedSamples, 24000);
    assert.equal(tail.truncated, true);
  });

  test("short.wav (48 samples): 1 s is zero-padded and flagged; minSec makes it an error", rd, async () => {
    const whole = await readAudio(wav("short"), {});
    assert.equal(whole.samples.length, 48);
    const clip = await readAudio(wav("short"), { durationSec: 1 });
    assert.equal(clip.samples.length, 48000);
    assert.equal(clip.paddedSamples, 48000 - 48);
    assert.equal(clip.truncated, true);
    assert.ok(clip.samples.subarray(48).every((v) => v === 0));
    await expectMediaError(readAudio(wav("short"), { durationSec: 1, minSec: 0.5 }), "too-short", wav("short"), /need 0\.5 s/);
    await expectMediaError(readAudio(wav("chirp_1s"), { startSec: 5, durationSec: 1 }), "too-short", wav("chirp_1s"), /past the end/);
  });
});

describe("bad inputs give a MediaError naming the file and the cause", () => {
  test("empty.wav, zero-byte file, missing path", rd, async () => {
    await expectMediaError(readAudio(wav("empty"), { durationSec: 1 }), "empty", wav("empty"), /no samples/);
    const zero = file("zero.mp4");
    fs.writeFileSync(zero, "");
    await expectMediaError(probeMedia(zero), "empty", zero, /0 bytes/);
    await expectMediaError(readFrame(zero, 0, { width: 8, height: 8 }), "empty", zero);
    await expectMediaError(readAudio(zero, {}), "empty", zero);
    const missing = file("no-such-file.mp4");
    await expectMediaError(probeMedia(missing), "missing", missing, /no such file/);
    await expectMediaError(readFrame(missing, 0, { width: 8, height: 8 }), "missing", missing);
    await expectMediaError(readAudio(missing, {}), "missing", missing);
  });

  test("a text file named .mp4 is 'corrupt'", async () => {
    const text = file("notes.mp4");
    fs.writeFileSync(text, "this is not a video\n");
    await expectMediaError(probeMedia(text), "corrupt", text, /moov atom not found|Invalid data/);
    await expectMediaError(readFrame(text, 0, { width: 8, height: 8 }), "corrupt", text);
    await expectMediaError(readAudio(text, {}), "corrupt", text);
  });

  test("a truncated mp4 (first half of bento.mp4) is 'truncated' where the data is missing", rd, async () => {
    const half = file("bento-half.mp4");
    const bytes = fs.readFileSync(bento);
    fs.writeFileSync(half, bytes.subarray(0, Math.floor(bytes.length / 2)));
    // the header survives, so probing still works and early frames decode
    assert.ok((await probeMedia(half)).video);
    const early = await readFrame(half, 0, { width: 32, height: 32 });
    assert.equal(early.data.length, 32 * 32 * 3);
    await expectMediaError(readFrame(half, 1.0, { width: 32, height: 32 }), "truncated", half, /last decoded frame/);
    await expectMediaError(readAudio(half, {}), "truncated", half, /partial file|Invalid data/);
    await expectMediaError(readAudio(half, { startSec: 0, durationSec: 1 }), "truncated", half);
  });

  test("no audio track → 'no-audio-stream'; no video track → 'no-video-stream'", rd, async () => {
    await expectMediaError(readAudio(IDX_NO_AUDIO, {}), "no-audio-stream", IDX_NO_AUDIO, /no audio stream/);
    await expectMediaError(
      readSamples(IDX_NO_AUDIO, [1], { size: { width: 8, height: 8 }, sampleRate: 48000 }),
      "no-audio-stream",
      IDX_NO_AUDIO,
    );
    const info = await probeMedia(IDX_NO_AUDIO);
    assert.equal(info.audio, null);
    assert.ok(info.video);
    await expectMediaError(readFrame(wav("chirp_1s"), 0, { width: 8, height: 8 }), "no-video-stream", wav("chirp_1s"), /no video stream/);
  });
});

describe("readSamples", () => {
  test("frames and 1 s audio windows centred on each time, aligned in seconds", async () => {
    const times = [1.5, 1.2, 2.5, 0.2];
    const { frames, audio } = await readSamples(IDX, times, { size: { width: 16, height: 16 }, sampleRate: 48000 });
    assert.deepEqual(
      frames.map((f) => frameIndex(f)),
      [15, 12, 25, 2],
    );
    const onset = (x: Float32Array) => x.findIndex((v) => Math.abs(v) > 0.05);
    for (const [i, t] of times.entries()) {
      const clip = audio[i]!;
      assert.equal(clip.samples.length, 48000);
      assert.equal(clip.sampleRate, 48000);
      assert.ok(Math.abs(clip.startSec - (t - 0.5)) < 1e-9);
      const burst = (1.5 - (t - 0.5)) * 48000; // where the burst at 1.5 s falls in this window
      if (burst >= 0 && burst < 48000 - 960) {
        // sample-accurate: a samples-vs-seconds mix-up or a misaligned seek would be off by far more than 1 ms
        const at = onset(clip.samples);
        assert.ok(Math.abs(at - burst) <= 48, `t=${t}: burst starts at sample ${at}, expected ${burst}`);
      } else {
        assert.ok(Math.max(...clip.samples.map(Math.abs)) < 0.05, `t=${t}: no burst in this window`);
      }
    }
    // t = 0.2: the window starts 0.3 s before the file → zero-padded, not truncated
    assert.equal(audio[3]!.paddedSamples, Math.round(0.3 * 48000));
    assert.equal(audio[3]!.truncated, false);
    // same samples as reading the window directly
    const direct = await readAudio(IDX, { startSec: 1.0, durationSec: 1 });
    let maxDiff = 0;
    for (let i = 0; i < 48000; i++) maxDiff = Math.max(maxDiff, Math.abs(direct.samples[i]! - audio[0]!.samples[i]!));
    assert.ok(maxDiff < 0.02, `max diff ${maxDiff}`);
  });

  test("audio that starts late in the container stays aligned (leading silence is filled in)", async () => {
    const onset = (x: Float32Array) => x.findIndex((v) => Math.abs(v) > 0.05);
    const whole = await readAudio(IDX_LATE_AUDIO, { durationSec: 3 });
    assert.ok(Math.abs(onset(whole.samples) - 1.8 * 48000) <= 96, `onset ${onset(whole.samples)}`);
    const { frames, audio } = await readSamples(IDX_LATE_AUDIO, [1.8, 1.2], { size: { width: 8, height: 8 }, sampleRate: 48000 });
    assert.deepEqual(
      frames.map((f) => frameIndex(f)),
      [18, 12],
    );
    assert.ok(Math.abs(onset(audio[0]!.samples) - 24000) <= 96, `onset ${onset(audio[0]!.samples)}`);
    assert.equal(onset(audio[1]!.samples), -1, "no burst in [0.7, 1.7) s");
  });

  test("bento.mp4: 224x224 frames and 48 kHz windows", rd, async () => {
    const { frames, audio } = await readSamples(bento, [0.5, 0.6], { size: { width: 224, height: 224 }, sampleRate: 48000 });
    assert.equal(frames.length, 2);
    assert.equal(frames[0]!.data.length, 224 * 224 * 3);
    assert.deepEqual(
      audio.map((a) => a.samples.length),
      [48000, 48000],
    );
  });
});
