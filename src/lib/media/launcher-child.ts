/**
 * The media launcher's own process (see launcher.ts): it starts ffmpeg/ffprobe for its parent and
 * relays their pipes over the IPC channel. It stays small, so that each fork is cheap, and it exits
 * (killing what it started) when its parent goes away.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import type { LauncherReply, LauncherRequest } from "./launcher-protocol";

const running = new Map<number, ChildProcess>();

function reply(msg: LauncherReply): void {
  process.send?.(msg);
}

function start(msg: Extract<LauncherRequest, { t: "spawn" }>): void {
  const { id } = msg;
  let child: ChildProcess;
  try {
    child = spawn(msg.bin, msg.args, { stdio: msg.stdio.map((s) => (s === "ignore" ? "ignore" : "pipe")) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply({ t: "error", id, code: e.code ?? null, message: e.message });
    reply({ t: "close", id, code: null, signal: null });
    return;
  }
  running.set(id, child);
  msg.stdio.forEach((mode, fd) => {
    const stream = child.stdio[fd] as (Readable & Writable) | null;
    if (!stream) return;
    if (mode === "read") {
      stream.on("data", (data: Buffer) => reply({ t: "data", id, fd, data }));
      stream.on("end", () => reply({ t: "eof", id, fd }));
    }
    // EPIPE after ffmpeg exits: the exit status says why
    stream.on("error", () => {});
  });
  child.on("error", (err: NodeJS.ErrnoException) => reply({ t: "error", id, code: err.code ?? null, message: err.message }));
  child.on("exit", (code, signal) => reply({ t: "exit", id, code, signal }));
  child.on("close", (code, signal) => {
    running.delete(id);
    reply({ t: "close", id, code, signal });
  });
}

function input(id: number, fd: number): Writable | null {
  const child = running.get(id);
  return (child?.stdio[fd] as Writable | null | undefined) ?? null;
}

process.on("message", (msg: LauncherRequest) => {
  switch (msg.t) {
    case "spawn":
      start(msg);
      break;
    case "write": {
      const n = msg.data.byteLength;
      const pipe = input(msg.id, msg.fd);
      if (!pipe || pipe.destroyed) reply({ t: "ack", id: msg.id, fd: msg.fd, bytes: n });
      else pipe.write(msg.data, () => reply({ t: "ack", id: msg.id, fd: msg.fd, bytes: n }));
      break;
    }
    case "end":
      input(msg.id, msg.fd)?.end();
      break;
    case "kill":
      running.get(msg.id)?.kill(msg.signal);
      break;
  }
});

// The parent is gone (exit or crash): nothing may outlive it.
process.on("disconnect", () => {
  for (const child of running.values()) child.kill("SIGKILL");
  process.exit(0);
});
