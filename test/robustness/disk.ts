/**
 * A real small filesystem for disk-full tests: a tmpfs mounted on a fresh folder when the tests run
 * as root (CI does), and a skip reason otherwise.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

/** Why disk-full tests cannot run here, or false when they can (root and a working `mount -t tmpfs`). */
export function smallDiskSkip(): string | false {
  if (process.platform !== "linux") return "disk-full tests need Linux (tmpfs)";
  if (process.getuid?.() !== 0) return "disk-full tests mount a tmpfs and need root (CI runs as root); skipped";
  return false;
}

/** A mounted tmpfs of `sizeMb` MB; `fill(leaveKb)` fills it but `leaveKb` KB; `cleanup()` unmounts and removes it. */
export interface SmallDisk {
  dir: string;
  fill(leaveKb: number): void;
  /** Removes the filler, freeing the space again. */
  free(): void;
  freeKb(): number;
  cleanup(): void;
}

export function mountSmallDisk(sizeMb = 20): SmallDisk {
  const dir = mkdtempSync(path.join(tmpdir(), "l3kit-smalldisk-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir]);
  const filler = path.join(dir, "filler.bin");
  const freeKb = () => {
    const s = statfsSync(dir);
    return Math.floor((s.bavail * s.bsize) / 1024);
  };
  return {
    dir,
    freeKb,
    fill(leaveKb: number) {
      rmSync(filler, { force: true });
      const kb = freeKb() - leaveKb;
      if (kb > 0) writeFileSync(filler, Buffer.alloc(kb * 1024));
    },
    free() {
      rmSync(filler, { force: true });
    },
    cleanup() {
      try {
        execFileSync("umount", [dir]);
      } catch {
        execFileSync("umount", ["-l", dir]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
