/** Messages between a process and its media launcher (launcher.ts ↔ launcher-child.ts). */

/** One pipe of a launched process, from the parent's side: it writes (the process reads), reads, or none. */
export type LaunchedPipe = "write" | "read" | "ignore";

/** Parent → launcher. */
export type LauncherRequest =
  | { t: "spawn"; id: number; bin: string; args: string[]; stdio: LaunchedPipe[] }
  | { t: "write"; id: number; fd: number; data: Uint8Array }
  | { t: "end"; id: number; fd: number }
  | { t: "kill"; id: number; signal: NodeJS.Signals };

/** Launcher → parent, in the order the launched process's events happen. */
export type LauncherReply =
  | { t: "data"; id: number; fd: number; data: Uint8Array }
  | { t: "eof"; id: number; fd: number }
  | { t: "ack"; id: number; fd: number; bytes: number }
  | { t: "error"; id: number; code: string | null; message: string }
  | { t: "exit"; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { t: "close"; id: number; code: number | null; signal: NodeJS.Signals | null };
