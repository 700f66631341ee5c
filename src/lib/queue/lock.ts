import { promises as fsp } from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";

/** Whether a process of this machine is alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Runs `fn` while holding a lock folder (made with an atomic mkdir), so that processes of one
 * machine that would do the same work (workers preparing one dataset) take turns: the second finds
 * the work done. A lock left by a process that is gone (killed) is taken over. `onWait` is called
 * once when the lock is held by another process.
 */
export async function withLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  opts: { pollMs?: number; onWait?: (owner: string) => void } = {},
): Promise<T> {
  await fsp.mkdir(path.dirname(lockDir), { recursive: true });
  const me = `${hostname()} ${process.pid}`;
  let waited = false;
  for (;;) {
    try {
      await fsp.mkdir(lockDir);
      await fsp.writeFile(path.join(lockDir, "owner"), me);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = await fsp.readFile(path.join(lockDir, "owner"), "utf8").catch(() => "");
      const [host, pidText] = owner.split(" ");
      if (owner && host === hostname() && !alive(Number(pidText))) {
        await fsp.rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!waited) {
        waited = true;
        opts.onWait?.(owner || "another process");
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lockDir, { recursive: true, force: true });
  }
}
