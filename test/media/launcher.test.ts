import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { after, describe, test } from "node:test";
import ffmpeg from "fluent-ffmpeg";
import { ffmpegPaths, readAudio, readFrames } from "../../src/lib/media";
import { fluentArguments } from "../../src/lib/media/ffmpeg";
import { type MediaProcess, spawnMedia } from "../../src/lib/media/launcher";
import { tempDir } from "../helpers";

const tmp = tempDir("l3kit-launcher-");
after(() => tmp.cleanup?.());

function collect(stream: Readable | null): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream?.on("data", (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => (stream ? stream.on("end", () => resolve(Buffer.concat(chunks))) : resolve(Buffer.alloc(0))));
}

function closed(p: MediaProcess): Promise<[number | null, NodeJS.Signals | null]> {
  return once(p, "close") as Promise<[number | null, NodeJS.Signals | null]>;
}

async function write(stream: Writable, data: Uint8Array): Promise<void> {
  for (let i = 0; i < data.length; i += 1 << 16) {
    if (!stream.write(data.subarray(i, i + (1 << 16)))) await once(stream, "drain");
  }
  stream.end();
}

describe("media launcher", () => {
  test("relays stdout and the exit code of a launched process", async () => {
    const p = spawnMedia(ffmpegPaths().ffmpeg, ["-hide_banner", "-version"], ["ignore", "read", "read"]);
    const [out, [code, signal]] = await Promise.all([collect(p.stdout), closed(p)]);
    assert.match(out.toString(), /^ffmpeg version/);
    assert.deepEqual([code, signal, p.exitCode], [0, null, 0]);
  });

  test("relays two input pipes (stdin and fd 3) byte for byte, past the backpressure mark", async () => {
    // stdin → stdout, fd 3 → stderr
    const p = spawnMedia("/bin/sh", ["-c", "cat; cat <&3 >&2"], ["write", "read", "read", "write"]);
    const big = new Uint8Array(10 << 20).map((_, i) => (i * 7 + (i >> 11)) & 255);
    const small = new Uint8Array(100_000).map((_, i) => (i * 13) & 255);
    const [out, err] = await Promise.all([
      collect(p.stdout),
      collect(p.stderr),
      write(p.stdin as Writable, big),
      write(p.stdio[3] as Writable, small),
      closed(p),
    ]);
    assert.equal(out.length, big.length);
    assert.ok(out.equals(Buffer.from(big)), "stdout differs from what was written to stdin");
    assert.ok(err.equals(Buffer.from(small)), "stderr differs from what was written to fd 3");
  });

  test("kill() ends the process and reports the signal; kill() after exit returns false", async () => {
    const p = spawnMedia("/bin/sleep", ["30"], ["ignore", "ignore", "ignore"]);
    const done = closed(p);
    assert.equal(p.kill("SIGKILL"), true);
    const [code, signal] = await done;
    assert.deepEqual([code, signal, p.signalCode], [null, "SIGKILL", "SIGKILL"]);
    assert.equal(p.kill("SIGKILL"), false);
  });

  test("a missing binary gives an 'error' event with ENOENT, then 'close'", async () => {
    const p = spawnMedia(path.join(tmp.dir, "no-such-binary"), [], ["ignore", "read", "read"]);
    const [err] = (await once(p, "error")) as [NodeJS.ErrnoException];
    assert.equal(err.code, "ENOENT");
    await closed(p);
  });

  test("fluentArguments gives fluent-ffmpeg's command line with the output on stdout", () => {
    const cmd = ffmpeg("in.mp4").inputOptions(["-ss", "1.5"]).outputOptions(["-an"]).videoFilters(["scale=8:8"]).format("rawvideo");
    assert.deepEqual(fluentArguments(cmd), ["-ss", "1.5", "-i", "in.mp4", "-filter:v", "scale=8:8", "-an", "-f", "rawvideo", "pipe:1"]);
  });

  test("decoding through the launcher gives the same frames and audio as spawning directly", async () => {
    const video = path.join(tmp.dir, "clip.mp4");
    execFileSync(ffmpegPaths().ffmpeg, [
      ...["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=2"],
      ...["-f", "lavfi", "-i", "sine=f=440:d=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", video],
    ]);
    const decode = async () => ({
      frames: await readFrames(video, [0.25, 1.05], { width: 32, height: 24 }),
      audio: await readAudio(video, { sampleRate: 16000 }),
    });
    const viaLauncher = await decode();
    process.env.L3KIT_MEDIA_LAUNCHER = "0";
    try {
      const direct = await decode();
      assert.equal(viaLauncher.frames.length, 2);
      for (const [i, f] of direct.frames.entries()) assert.ok(Buffer.from(f.data).equals(Buffer.from(viaLauncher.frames[i]!.data)));
      assert.ok(Buffer.from(direct.audio.samples.buffer).equals(Buffer.from(viaLauncher.audio.samples.buffer)));
      assert.ok(direct.audio.samples.length > 30000);
    } finally {
      delete process.env.L3KIT_MEDIA_LAUNCHER;
    }
  });

  test("what the launcher started dies with the process that asked, and that process can exit", async () => {
    // A process launches `sleep` (printing its pid) and stays; killed with SIGKILL, it cannot clean
    // up, so the launcher must notice and kill `sleep` itself.
    const script = path.join(tmp.dir, "parent.ts");
    const launcher = path.resolve(__dirname, "../../src/lib/media/launcher.ts");
    fs.writeFileSync(
      script,
      `import { spawnMedia } from ${JSON.stringify(launcher)};
const p = spawnMedia("/bin/sh", ["-c", "echo $$; exec sleep 60"], ["ignore", "read", "ignore"]);
p.stdout!.on("data", (d: Buffer) => process.stdout.write(d));
setInterval(() => {}, 1000);
`,
    );
    const parent = spawn(process.execPath, ["--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
      cwd: path.resolve(__dirname, "../.."),
    });
    const [line] = (await once(parent.stdout!, "data")) as [Buffer];
    const pid = Number(line.toString().trim());
    assert.ok(pid > 1, `no pid printed: ${line}`);
    process.kill(pid, 0); // alive
    parent.kill("SIGKILL");
    await once(parent, "close");
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
    }
    assert.equal(alive, false, "the launched process outlived the process that launched it");

    // And a process that used the launcher exits on its own when its work is done.
    const done = path.join(tmp.dir, "done.ts");
    fs.writeFileSync(
      done,
      `import { spawnMedia } from ${JSON.stringify(launcher)};
const p = spawnMedia("/bin/true", [], ["ignore", "ignore", "ignore"]);
p.on("close", (code: number) => console.log("closed", code));
`,
    );
    const out = execFileSync(process.execPath, ["--import", "tsx", done], { cwd: path.resolve(__dirname, "../.."), timeout: 60_000 });
    assert.equal(out.toString().trim(), "closed 0");
  });
});
