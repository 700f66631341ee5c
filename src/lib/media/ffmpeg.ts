/**
 * The ffmpeg plumbing shared by the decoders: binary paths (with the exec-bit fix for the npm
 * ffprobe), the bounded process pool, and one runner that streams ffmpeg's stdout into a Buffer,
 * enforces a timeout by killing the process, and turns ffmpeg's stderr into a {@link MediaError}.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import ffmpeg from "fluent-ffmpeg";
import { Pool } from "../util";
import { MediaError, type MediaErrorReason } from "./errors";

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
 * Runs one ffmpeg command (configured by `configure` on a fluent-ffmpeg command for `file`) in the
 * pool, collects stdout into a Buffer and all stderr lines. A non-zero exit becomes a MediaError
 * naming the file and ffmpeg's reason; past `timeoutMs` the process is SIGKILLed and the call fails
 * with reason "timeout" once the process is gone.
 */
export function runFfmpeg(file: string, configure: (cmd: ffmpeg.FfmpegCommand) => void, opts: FfmpegRunOptions): Promise<FfmpegRunResult> {
  const bin = ffmpegPaths().ffmpeg;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_MEDIA_TIMEOUT_MS;
  return pool.run(
    () =>
      new Promise<FfmpegRunResult>((resolve, reject) => {
        ffmpeg.setFfmpegPath(bin);
        const cmd = ffmpeg(file);
        configure(cmd);
        const chunks: Buffer[] = [];
        const stderr: string[] = [];
        let timedOut = false;
        let started = false;
        let settled = false;
        let processDone: { err?: Error } | undefined;
        let streamDone = false;

        const finish = () => {
          if (settled || !processDone) return;
          if (!processDone.err && !streamDone) return;
          settled = true;
          clearTimeout(timer);
          if (started) liveProcesses--;
          const errors = stderrErrors(stderr);
          if (timedOut) {
            reject(
              new MediaError(`${opts.what}: ffmpeg took longer than ${timeoutMs} ms and was killed`, { subject: file, reason: "timeout" }),
            );
            return;
          }
          if (processDone.err) {
            reject(ffmpegFailure(file, opts, errors, processDone.err));
            return;
          }
          resolve({ stdout: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), stderr, errors });
        };

        const timer = setTimeout(() => {
          timedOut = true;
          if (started) cmd.kill("SIGKILL");
        }, timeoutMs);

        cmd.on("start", () => {
          started = true;
          liveProcesses++;
          if (timedOut) cmd.kill("SIGKILL");
        });
        cmd.on("stderr", (line: string) => {
          stderr.push(line);
        });
        cmd.on("error", (err: Error) => {
          processDone = { err };
          finish();
        });
        cmd.on("end", () => {
          processDone = {};
          finish();
        });
        // No 'close' event: fluent-ffmpeg fails a run whose output stream closes more than 20 ms
        // before the process 'exit' event arrives, which happens on a loaded machine.
        const out = new PassThrough({ emitClose: false, autoDestroy: false });
        cmd.pipe(out, { end: true });
        out.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
        });
        out.on("end", () => {
          streamDone = true;
          finish();
        });
        out.on("error", () => {
          // the process error carries the reason
        });
      }),
  );
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
export function runFfprobe(file: string, args: string[], timeoutMs = DEFAULT_MEDIA_TIMEOUT_MS): Promise<string> {
  const bin = ffmpegPaths().ffprobe;
  return pool.run(
    () =>
      new Promise<string>((resolve, reject) => {
        liveProcesses++;
        const child = execFile(
          bin,
          [...args, file],
          { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
          (err, stdout, stderr) => {
            liveProcesses--;
            if (!err) {
              resolve(stdout);
              return;
            }
            const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
            if (e.killed && e.signal === "SIGKILL") {
              reject(
                new MediaError(`probing: ffprobe took longer than ${timeoutMs} ms and was killed`, { subject: file, reason: "timeout" }),
              );
              return;
            }
            const errors = stderrErrors(String(stderr).split(/\r?\n/));
            reject(ffmpegFailure(file, { what: "probing", stream: "video" }, errors, err));
          },
        );
        child.stdin?.end();
      }),
  );
}
