import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, L3kitError } from "./errors";

/** This machine's name as it appears in temp file names (letters, digits and `-` only). */
function hostTag(): string {
  return (os.hostname() || "host").replace(/[^A-Za-z0-9-]/g, "-").slice(0, 32);
}

/**
 * The temp name an atomic write of `file` uses: `.<name>.<pid>.<random>.<host>.tmp` in the same
 * folder. The pid and host let {@link removeStaleTempFiles} tell a dead writer's debris from a live
 * writer's file, also when several machines share the folder.
 */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.${hostTag()}.tmp`);
}

const WRITE_REASONS: Record<string, string> = {
  ENOSPC: "disk-full",
  EDQUOT: "disk-full",
  EACCES: "permission-denied",
  EPERM: "permission-denied",
  EROFS: "read-only",
  EISDIR: "is-a-folder",
  ENOTDIR: "not-a-folder",
  EEXIST: "exists",
};

const WRITE_CAUSES: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "read-only file system",
  EISDIR: "it is a folder",
  ENOTDIR: "a parent of it is a file, not a folder",
  EEXIST: "a file is in the way",
};

/**
 * A write error that names `file` and says why (`no space left on device (ENOSPC)`); an
 * {@link L3kitError} is passed through unchanged. `reason` is "disk-full", "permission-denied",
 * "read-only", "is-a-folder", "not-a-folder", "exists" or "write-failed".
 */
export function writeError(file: string, err: unknown, action = "cannot write"): L3kitError {
  if (err instanceof L3kitError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? "";
  const cause = WRITE_CAUSES[code] ?? (err instanceof Error ? err.message : String(err));
  return new L3kitError(`${action}: ${cause}${code ? ` (${code})` : ""}`, {
    subject: file,
    reason: WRITE_REASONS[code] ?? "write-failed",
    cause: err,
  });
}

/**
 * Writes a file atomically: the data goes to a temp file in the same folder, is flushed, then
 * renamed over the target, so a crash leaves either the old file or the new one, never half. On any
 * failure the temp file is removed and the error names `file` and the cause ({@link writeError}).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  try {
    await fsp.mkdir(path.dirname(file), { recursive: true });
  } catch (err) {
    throw writeError(path.dirname(file), err, "cannot create the folder");
  }
  const tmp = tempPathFor(file);
  try {
    const handle = await fsp.open(tmp, "w");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw writeError(file, err);
  }
}

/** Writes JSON (2-space indented, trailing newline) atomically. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** True when the path exists. */
export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether process `pid` runs on this machine. */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The writer of a temp name: `.<name>.<pid>.<random>.<host>.tmp` (this l3kit), `.<name>.<pid>.<random>.tmp`
 * and `.<name>.<pid>.tmp` (older ones), each also with `.old` appended (a swapped-out checkpoint
 * folder). Null for any other name.
 */
export function parseTempName(name: string): { pid: number; host?: string } | null {
  let n = name;
  if (n.endsWith(".old")) n = n.slice(0, -4);
  if (!n.startsWith(".") || !n.endsWith(".tmp")) return null;
  const parts = n.slice(1, -4).split(".");
  const at = (i: number) => parts[parts.length - i] ?? "";
  const isPid = (s: string) => /^\d+$/.test(s);
  const isHex = (s: string) => /^[0-9a-f]{8}$/.test(s);
  if (parts.length >= 4 && isPid(at(3)) && isHex(at(2)) && /^[A-Za-z0-9-]+$/.test(at(1))) return { pid: Number(at(3)), host: at(1) };
  if (parts.length >= 3 && isPid(at(2)) && isHex(at(1))) return { pid: Number(at(2)) };
  if (parts.length >= 2 && isPid(at(1))) return { pid: Number(at(1)) };
  return null;
}

/** Temp files of another machine are removed only when older than this (its writer cannot be asked). */
const FOREIGN_TEMP_MAX_AGE_MS = 24 * 3600 * 1000;

/**
 * Removes the temp files (and temp checkpoint folders) that atomic writes left in `dir` when their
 * process died: a temp file is stale when its pid no longer runs on this machine, or, when another
 * machine wrote it, when it is more than a day old. Live writers' files are kept. Returns the paths
 * removed; a missing folder gives none.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const host = hostTag();
  const removed: string[] = [];
  for (const name of names) {
    const m = parseTempName(name);
    if (!m) continue;
    const { pid, host: tag } = m;
    const p = path.join(dir, name);
    let stale: boolean;
    if (tag !== undefined && tag !== host) {
      const st = await fsp.stat(p).catch(() => null);
      stale = st !== null && Date.now() - st.mtimeMs > FOREIGN_TEMP_MAX_AGE_MS;
    } else stale = !processAlive(pid);
    if (!stale) continue;
    await fsp.rm(p, { recursive: true, force: true }).catch(() => {});
    removed.push(p);
  }
  return removed;
}

/**
 * The real reason a recursive mkdir of `abs` failed: Node reports some failures (a read-only file
 * system) as ENOENT, so the first missing folder is made on its own to get the system's error.
 */
async function mkdirCause(abs: string, err: unknown): Promise<unknown> {
  let first = abs;
  for (let p = abs; ; p = path.dirname(p)) {
    if (await exists(p)) break;
    first = p;
    if (path.dirname(p) === p) break;
  }
  try {
    await fsp.mkdir(first);
    await fsp.rmdir(first).catch(() => {});
    return err;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EEXIST" ? err : e;
  }
}

/**
 * Checks, before any work, that `dir` can be written to: creates it (and its parents) when missing,
 * and writes and removes a probe file in it. Throws a {@link ConfigError} naming `subject` (an
 * option such as `--out`) and the path: "is a file, not a folder", "is not writable (permission
 * denied)", "is on a read-only file system", "the disk is full". Returns the absolute path.
 * With `create: false` a missing folder is not left behind: its first missing ancestor is made and
 * removed again, which proves that the folder could be made.
 */
export async function checkWritableDir(dir: string, subject = "--out", opts: { create?: boolean } = {}): Promise<string> {
  const abs = path.resolve(dir);
  const fail = (why: string, reason: string, cause?: unknown) => new ConfigError(`${abs} ${why}`, { subject, reason, cause });
  const st = await fsp.stat(abs).catch(() => null);
  if (st && !st.isDirectory()) throw fail("is a file, not a folder", "not-a-folder");
  try {
    if (st || opts.create !== false) await fsp.mkdir(abs, { recursive: true });
    else {
      const cause = await mkdirCause(abs, null);
      if (cause !== null) throw cause;
      return abs;
    }
  } catch (first) {
    const err = await mkdirCause(abs, first);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR" || code === "EEXIST") throw fail("cannot be created: a part of its path is a file", "not-a-folder", err);
    const e = writeError(abs, err, "x");
    throw fail(`cannot be created: ${e.message.replace(`${abs}: x: `, "")}`, e.reason, err);
  }
  const probe = tempPathFor(path.join(abs, "write-check"));
  try {
    await fsp.writeFile(probe, "");
  } catch (err) {
    const e = writeError(abs, err);
    const why =
      e.reason === "permission-denied"
        ? "is not writable (permission denied)"
        : e.reason === "read-only"
          ? "is on a read-only file system"
          : e.reason === "disk-full"
            ? "cannot be written: the disk is full"
            : `cannot be written: ${e.message.replace(`${abs}: cannot write: `, "")}`;
    throw fail(why, e.reason, err);
  } finally {
    await fsp.rm(probe, { force: true }).catch(() => {});
  }
  return abs;
}
