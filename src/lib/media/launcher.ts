/**
 * Starts ffmpeg and ffprobe from a small helper process instead of from this one.
 *
 * Why: on Linux, Node starts a child by fork()ing, which copies the parent's page tables, so the
 * main thread stops for a time that grows with the process's memory (tens of milliseconds per
 * spawn at a few hundred MiB). The quickstart starts hundreds of ffmpeg processes while evaluating, from a
 * process of ≈ 700 MiB: its evaluation took ≈ 145 s spawning directly and ≈ 110 s through the
 * launcher (README, "Outside the step": the same clone, one sitting). The launcher is forked once,
 * while it is cheap, and stays small; ffmpeg's pipes are relayed over its IPC channel (a few hundred
 * KB per call).
 *
 * `L3KIT_MEDIA_LAUNCHER=0` spawns directly (the old way). Either way the caller gets the same
 * {@link MediaProcess}: pipes, `exitCode`/`signalCode`, `kill()`, and the events `error`, `exit`
 * and `close` of a ChildProcess.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import * as path from "node:path";
import { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import type { LaunchedPipe, LauncherReply, LauncherRequest } from "./launcher-protocol";

export type { LaunchedPipe } from "./launcher-protocol";

/** The part of a ChildProcess that l3kit's media code uses. */
export interface MediaProcess extends EventEmitter {
  /** Pipes by fd: Writable where the parent writes, Readable where it reads, null where ignored. */
  readonly stdio: ReadonlyArray<Readable | Writable | null>;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  /** Sends a signal; false when the process has already exited. */
  kill(signal?: NodeJS.Signals): boolean;
}

/** Bytes written but not yet taken by the launched process, above which writes wait (backpressure). */
const HIGH_WATER = 4 << 20;

/** A process started by the launcher: its pipes are relays over the launcher's IPC channel. */
class RelayedProcess extends EventEmitter implements MediaProcess {
  readonly stdio: Array<Readable | Writable | null>;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private exited = false;
  private readonly inFlight = new Map<number, { bytes: number; waiting: (() => void) | null }>();

  constructor(
    private readonly launcher: Launcher,
    readonly id: number,
    pipes: readonly LaunchedPipe[],
  ) {
    super();
    this.stdio = pipes.map((mode, fd) => {
      if (mode === "read") return new Readable({ read() {} });
      if (mode === "write") return this.relayWritable(fd);
      return null;
    });
  }

  get stdin(): Writable | null {
    return (this.stdio[0] as Writable | null) ?? null;
  }
  get stdout(): Readable | null {
    return (this.stdio[1] as Readable | null) ?? null;
  }
  get stderr(): Readable | null {
    return (this.stdio[2] as Readable | null) ?? null;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    if (this.exited) return false;
    this.launcher.send({ t: "kill", id: this.id, signal });
    return true;
  }

  private relayWritable(fd: number): Writable {
    const state = { bytes: 0, waiting: null as (() => void) | null };
    this.inFlight.set(fd, state);
    return new Writable({
      write: (chunk: Buffer, _enc, done) => {
        state.bytes += chunk.byteLength;
        this.launcher.send({ t: "write", id: this.id, fd, data: chunk });
        if (state.bytes < HIGH_WATER) done();
        else state.waiting = () => done();
      },
      final: (done) => {
        this.launcher.send({ t: "end", id: this.id, fd });
        done();
      },
    });
  }

  /** Handles one message of the launcher about this process. */
  receive(msg: LauncherReply): void {
    switch (msg.t) {
      case "data":
        (this.stdio[msg.fd] as Readable | null)?.push(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
        break;
      case "eof":
        (this.stdio[msg.fd] as Readable | null)?.push(null);
        break;
      case "ack": {
        const state = this.inFlight.get(msg.fd);
        if (!state) break;
        state.bytes -= msg.bytes;
        if (state.waiting && state.bytes < HIGH_WATER) {
          const go = state.waiting;
          state.waiting = null;
          go();
        }
        break;
      }
      // Lifecycle events each get a turn of the event loop, as a ChildProcess's do: code that awaits
      // 'error' and then listens for 'close' must not miss it when both arrive in one read.
      case "error":
        setImmediate(() => this.emit("error", Object.assign(new Error(msg.message), { code: msg.code ?? undefined })));
        break;
      case "exit":
        this.markExited(msg.code, msg.signal);
        setImmediate(() => this.emit("exit", msg.code, msg.signal));
        break;
      case "close":
        this.markExited(msg.code, msg.signal);
        for (const s of this.stdio) if (s instanceof Readable && !s.readableEnded) s.push(null);
        setImmediate(() => setImmediate(() => this.emit("close", msg.code, msg.signal)));
        break;
    }
  }

  /** The process is gone: its input pipes close (a writer waiting on them must not hang). */
  markExited(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    this.exitCode = code;
    this.signalCode = signal;
    for (const [fd, state] of this.inFlight) {
      const go = state.waiting;
      state.waiting = null;
      go?.();
      (this.stdio[fd] as Writable | null)?.destroy();
    }
  }
}

/** The helper process and the processes it runs for us. */
class Launcher {
  private readonly proc: ChildProcess;
  private readonly live = new Map<number, RelayedProcess>();
  private nextId = 1;
  dead = false;

  constructor() {
    const ts = path.extname(__filename) === ".ts";
    this.proc = fork(path.join(__dirname, `launcher-child${ts ? ".ts" : ".js"}`), [], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      serialization: "advanced",
      // from the sources (tests, tsx) the child needs tsx's loader, by path (the cwd may be anywhere); never the parent's profiler flags
      execArgv: ts ? ["--import", pathToFileURL(require.resolve("tsx")).href] : [],
    });
    this.proc.on("message", (msg: LauncherReply) => {
      const p = this.live.get(msg.id);
      if (!p) return;
      if (msg.t === "close") this.live.delete(msg.id);
      p.receive(msg);
      this.updateRef();
    });
    this.proc.on("exit", () => this.fail("the media launcher process exited"));
    this.proc.on("error", (err) => this.fail(`the media launcher process failed: ${err.message}`));
    this.updateRef();
  }

  send(msg: LauncherRequest): void {
    if (!this.dead) this.proc.send(msg);
  }

  spawn(bin: string, args: readonly string[], stdio: readonly LaunchedPipe[]): RelayedProcess {
    const id = this.nextId++;
    const p = new RelayedProcess(this, id, stdio);
    this.live.set(id, p);
    this.updateRef();
    this.send({ t: "spawn", id, bin, args: [...args], stdio: [...stdio] });
    return p;
  }

  /** The launcher keeps this process alive only while something it started is running. */
  private updateRef(): void {
    if (this.dead) return;
    const channel = this.proc.channel as { ref?(): void; unref?(): void } | undefined;
    if (this.live.size > 0) {
      this.proc.ref();
      channel?.ref?.();
    } else {
      this.proc.unref();
      channel?.unref?.();
    }
  }

  /** The launcher died: every process it ran fails like a process that could not run. */
  private fail(message: string): void {
    if (this.dead) return;
    this.dead = true;
    launcherFailed = true;
    process.emitWarning(`${message}; ffmpeg is started directly from now on`, { code: "L3KIT_MEDIA_LAUNCHER" });
    for (const p of this.live.values()) {
      p.emit("error", Object.assign(new Error(message), { code: "ELAUNCHER" }));
      p.markExited(null, "SIGKILL");
      p.emit("close", null, "SIGKILL");
    }
    this.live.clear();
  }
}

let current: Launcher | null = null;
/** Set when a launcher died: later processes start directly (slower, but they run). */
let launcherFailed = false;

function directSpawn(bin: string, args: readonly string[], stdio: readonly LaunchedPipe[]): MediaProcess {
  return spawn(bin, [...args], { stdio: stdio.map((s) => (s === "ignore" ? "ignore" : "pipe")) }) as ChildProcess & MediaProcess;
}

/**
 * Starts `bin` with `args` and the given pipes (fd 0, 1, 2, 3, …), through the media launcher
 * (see this file's header), or directly when `L3KIT_MEDIA_LAUNCHER=0`.
 */
export function spawnMedia(bin: string, args: readonly string[], stdio: readonly LaunchedPipe[]): MediaProcess {
  if (process.env.L3KIT_MEDIA_LAUNCHER === "0" || launcherFailed) return directSpawn(bin, args, stdio);
  if (current === null) current = new Launcher();
  return current.spawn(bin, args, stdio);
}
