/**
 * The ffmpeg plumbing shared by the decoders: binary paths (with the exec-bit fix for the npm
 * ffprobe), the bounded process pool, and one runner that streams ffmpeg's stdout into a Buffer,
 * enforces a timeout by killing the process, and turns ffmpeg's stderr into a {@link MediaError}.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import ffmpeg from "fluent-ffmpeg";
import { Pool } from "../util";
import { MediaError, type MediaErrorReason } from "./errors";
import { spawnMedia } from "./launcher";

/** Default per-call timeout. */
export const DEFAULT_MEDIA_TIMEOUT_MS = 60_000;

let resolvedPaths: { key: string; paths: { ffmpeg: string; ffprobe: string } } | undefined;

/** Makes `file` executable (chmod 0755); when that is not allowed, copies it to a private temp folder. */
function ensureExecutable(file: string, name: string): string {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return file;
  } catch {
    // fall through
  }
  try {
    fs.chmodSync(file, 0o755);
    fs.accessSync(file, fs.constants.X_OK);
    return file;
  } catch {
    // read-only install: run a private copy
  }
  try {
    const st = fs.statSync(file);
    const tag = createHash("sha1").update(`${file}:${st.size}:${st.mtimeMs}`).digest("hex").slice(0, 12);
    const dir = path.join(os.tmpdir(), `l3kit-bin-${process.getuid?.() ?? "u"}`);
    const copy = path.join(dir, `${name}-${tag}`);
    if (!fs.existsSync(copy)) {
      fs.mkdirSync(dir, { recursive: true });
      const tmp = `${copy}.${process.pid}.tmp`;
      fs.copyFileSync(file, tmp);
      fs.chmodSync(tmp, 0o755);
      fs.renameSync(tmp, copy);
    }
    return copy;
  } catch (err) {
    throw new MediaError(`${name} binary is not executable and could not be made so (chmod or copy failed)`, {
      subject: file,
      reason: "no-ffmpeg",
      cause: err,
    });
  }
}

function npmBinary(pkg: string, name: string): string {
  try {
    return (require(pkg) as { path: string }).path;
  } catch (err) {
    throw new MediaError(`cannot find the ${name} binary: install ${pkg} or set ${name.toUpperCase()}_PATH`, {
      subject: name,
      reason: "no-ffmpeg",
      cause: err,
    });
  }
}

/**
 * The ffmpeg and ffprobe binaries l3kit runs: `FFMPEG_PATH` / `FFPROBE_PATH` when set, else the npm
 * `@ffmpeg-installer/ffmpeg` / `@ffprobe-installer/ffprobe` binaries (made executable if the install
 * left them at mode 0644). Resolved once per distinct environment.
 */
export function ffmpegPaths(): { ffmpeg: string; ffprobe: string } {
  const envFfmpeg = process.env.FFMPEG_PATH || "";
  const envFfprobe = process.env.FFPROBE_PATH || "";
  const key = `${envFfmpeg}\u0000${envFfprobe}`;
  if (resolvedPaths?.key === key) return resolvedPaths.paths;
  const pick = (env: string, envName: string, pkg: string, name: string): string => {
    if (env) {
      if (!fs.existsSync(env)) throw new MediaError(`${envName} points to a missing file`, { subject: env, reason: "no-ffmpeg" });
      return ensureExecutable(env, name);
    }
    return ensureExecutable(npmBinary(pkg, name), name);
  };
  const paths = {
    ffmpeg: pick(envFfmpeg, "FFMPEG_PATH", "@ffmpeg-installer/ffmpeg", "ffmpeg"),
    ffprobe: pick(envFfprobe, "FFPROBE_PATH", "@ffprobe-installer/ffprobe", "ffprobe"),
  };
  resolvedPaths = { key, paths };
  return paths;
}

const defaultConcurrency = (): number => Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
let pool = new Pool(defaultConcurrency());
let liveProcesses = 0;

/**
 * Caps how many ffmpeg/ffprobe processes run at once (default: the number of CPU cores). Calls
 * already running keep their slot; new calls queue on the new limit.
 */
export function setMediaConcurrency(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setMediaConcurrency: n must be an integer >= 1, got ${n}`);
  pool = new Pool(n);
}

/** The current limit on concurrent ffmpeg processes. */
export function mediaConcurrency(): number {
  return pool.size;
}

/** Number of ffmpeg/ffprobe processes started by l3kit that have not exited yet (for tests and diagnostics). */
export function liveMediaProcesses(): number {
  return liveProcesses;
}

/** Fails fast (before spawning) on a missing, unreadable or zero-byte file. */
export async function checkInputFile(file: string): Promise<number> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new MediaError("no such file", { subject: file, reason: "missing", cause: err });
    throw new MediaError(`cannot stat the file (${code ?? (err as Error).message})`, { subject: file, reason: "unreadable", cause: err });
  }
  if (!st.isFile()) throw new MediaError("not a regular file", { subject: file, reason: "unreadable" });
  if (st.size === 0) throw new MediaError("the file is empty (0 bytes)", { subject: file, reason: "empty" });
  return st.size;
}

const NOISE =
  /^\s*(\[Parsed_showinfo|Input #|Output #|Stream mapping|Stream #|Duration:|Metadata:|\s+\w+\s*:|Press \[q\]|video:|size=|frame=)/;
const PATTERNS: Array<[RegExp, MediaErrorReason]> = [
  [/No such file or directory/i, "missing"],
  [/Permission denied/i, "unreadable"],
  [
    /partial file|truncat|end of file|Invalid NAL unit size|Error splitting the input into NAL units|Error while decoding|Packet corrupt|corrupt (?:decoded )?frame|concealing|error while seeking/i,
    "truncated",
  ],
  [
    /moov atom not found|Invalid data found when processing input|could not find codec parameters|Unknown format|Invalid argument|no decoder|Decoder .* not found|Failed to open codec|error reading header/i,
    "corrupt",
  ],
];

/** The lines of ffmpeg's stderr that look like errors, without the `[demuxer @ 0x…]` prefixes. */
export function stderrErrors(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || NOISE.test(raw)) continue;
    if (PATTERNS.some(([re]) => re.test(line)) || /error|invalid|fail|matches no streams|does not contain any stream/i.test(line)) {
      const clean = line.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i, "");
      if (!out.includes(clean)) out.push(clean);
    }
  }
  return out;
}

/** The most specific reason among ffmpeg's error lines (a damaged-data line wins over "corrupt"). */
export function classifyStderr(errors: readonly string[]): MediaErrorReason | undefined {
  for (const [re, reason] of PATTERNS) if (errors.some((l) => re.test(l))) return reason;
  return undefined;
}

/** Shortens a list of error lines for a message. */
export function summarizeErrors(errors: readonly string[], max = 3): string {
  if (errors.length === 0) return "no message";
  const shown = errors.slice(-max).map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
  return shown.join(" | ");
}

/** What one ffmpeg run produced. */
export interface FfmpegRunResult {
  stdout: Buffer;
  /** Every stderr line, in order. */
  stderr: string[];
  /** stderr lines that look like errors (decode errors on a run that still exited 0). */
  errors: string[];
}

/** Options of {@link runFfmpeg}. */
export interface FfmpegRunOptions {
  timeoutMs?: number;
  /** Words for error messages, e.g. "reading frames". */
  what: string;
  /** Which stream the run maps (turns "matches no streams" into the right reason). */
  stream: "video" | "audio";
}

/**
 * The command line fluent-ffmpeg builds for `cmd` with its output piped to stdout. l3kit uses
 * fluent-ffmpeg to build commands and starts them itself through {@link spawnMedia} (fluent-ffmpeg
 * forks from this process, see launcher.ts); `_getArguments` is the builder its own `run` uses
 * (fluent-ffmpeg 2.1.3, pinned; test/media/launcher.test.ts checks a command's arguments).
 */
export function fluentArguments(cmd: ffmpeg.FfmpegCommand): string[] {
  cmd.output("pipe:1");
  return (cmd as unknown as { _getArguments(): string[] })._getArguments();
}

/** Splits a process's stderr into lines as fluent-ffmpeg did (\r\n, \r or \n). */
function collectLines(stream: NodeJS.ReadableStream | null, lines: string[]): void {
  let partial = "";
  // decoded as one text, so a character split between two chunks stays whole
  stream?.setEncoding("utf8");
  stream?.on("data", (d: string) => {
    const parts = (partial + d).split(/\r\n|\r|\n/);
    partial = parts.pop() ?? "";
    lines.push(...parts);
  });
  stream?.on("end", () => {
    if (partial) lines.push(partial);
    partial = "";
  });
}

/**
 * Runs one process through {@link spawnMedia} in the pool: collects stdout into a Buffer and all
 * stderr lines, kills it (SIGKILL) past `timeoutMs`, and settles once it has exited and its pipes
 * are drained. `failed` is the exit error (non-zero code, signal, or a process that could not start).
 */
function runCollected(
  bin: string,
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: Buffer; stderr: string[]; failed: Error | null; timedOut: boolean }> {
  return pool.run(
    () =>
      new Promise((resolve) => {
        const child = spawnMedia(bin, args, ["ignore", "read", "read"]);
        liveProcesses++;
        const chunks: Buffer[] = [];
        const stderr: string[] = [];
        let startError: Error | null = null;
        let timedOut = false;
        child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
        collectLines(child.stderr, stderr);
        child.on("error", (err: Error) => {
          startError ??= err;
        });
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, timeoutMs);
        child.on("close", (code: number | null, signal: NodeJS.Signals | null) => {
          clearTimeout(timer);
          liveProcesses--;
          const failed =
            startError ??
            (code === 0
              ? null
              : new Error(
                  signal ? `${path.basename(bin)} was killed with signal ${signal}` : `${path.basename(bin)} exited with code ${code}`,
                ));
          resolve({ stdout: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), stderr, failed, timedOut });
        });
      }),
  );
}

/**
 * Runs one ffmpeg command (configured by `configure` on a fluent-ffmpeg command for `file`) in the
 * pool, collects stdout into a Buffer and all stderr lines. A non-zero exit becomes a MediaError
 * naming the file and ffmpeg's reason; past `timeoutMs` the process is SIGKILLed and the call fails
 * with reason "timeout" once the process is gone.
 */
export async function runFfmpeg(
  file: string,
  configure: (cmd: ffmpeg.FfmpegCommand) => void,
  opts: FfmpegRunOptions,
): Promise<FfmpegRunResult> {
  const bin = ffmpegPaths().ffmpeg;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_MEDIA_TIMEOUT_MS;
  const cmd = ffmpeg(file);
  configure(cmd);
  const run = await runCollected(bin, fluentArguments(cmd), timeoutMs);
  const errors = stderrErrors(run.stderr);
  if (run.timedOut)
    throw new MediaError(`${opts.what}: ffmpeg took longer than ${timeoutMs} ms and was killed`, { subject: file, reason: "timeout" });
  if (run.failed) throw ffmpegFailure(file, opts, errors, run.failed);
  return { stdout: run.stdout, stderr: run.stderr, errors };
}

function ffmpegFailure(file: string, opts: FfmpegRunOptions, errors: string[], err: Error): MediaError {
  const spawnCode = (err as NodeJS.ErrnoException).code;
  if (spawnCode === "EACCES" || spawnCode === "ENOENT") {
    return new MediaError(`${opts.what}: could not start ffmpeg (${err.message})`, { subject: file, reason: "no-ffmpeg", cause: err });
  }
  if (errors.some((l) => /matches no streams|does not contain any stream|Output file #\d+ does not contain/i.test(l))) {
    const reason = opts.stream === "video" ? "no-video-stream" : "no-audio-stream";
    return new MediaError(`no ${opts.stream} stream (ffmpeg: ${summarizeErrors(errors, 1)})`, { subject: file, reason, cause: err });
  }
  const reason = classifyStderr(errors) ?? "ffmpeg-failed";
  const words: Record<string, string> = {
    missing: "no such file",
    unreadable: "cannot read the file",
    truncated: "the data is truncated or damaged",
    corrupt: "not a readable media file",
  };
  const lead = words[reason] ?? "ffmpeg failed";
  const detail = errors.length ? summarizeErrors(errors) : err.message.split("\n")[0];
  return new MediaError(`${opts.what}: ${lead} (ffmpeg: ${detail})`, { subject: file, reason, cause: err });
}

/** Runs ffprobe with a timeout (SIGKILL) and returns its stdout. Fails with a MediaError naming the file. */
export async function runFfprobe(file: string, args: string[], timeoutMs = DEFAULT_MEDIA_TIMEOUT_MS): Promise<string> {
  const run = await runCollected(ffmpegPaths().ffprobe, [...args, file], timeoutMs);
  if (run.timedOut)
    throw new MediaError(`probing: ffprobe took longer than ${timeoutMs} ms and was killed`, { subject: file, reason: "timeout" });
  if (run.failed) throw ffmpegFailure(file, { what: "probing", stream: "video" }, stderrErrors(run.stderr), run.failed);
  return run.stdout.toString("utf8");
}
