/** Shows progress of a long loop: a bar on a TTY, plain periodic lines otherwise. */
export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  log(line: string): void;
  stop(): void;
}

/** What {@link createProgress} shows. */
export interface ProgressOptions {
  total: number;
  label: string;
  unit?: string;
  /** Seconds between plain lines (default 10). */
  everySec?: number;
  /** Default process.stderr. */
  stream?: NodeJS.WriteStream;
}

/**
 * Draws a progress on a terminal (a bar). The library draws none itself: the `l3kit` command installs
 * one (a terminal bar, see src/cli/progress.ts) with {@link setProgressDrawer}.
 */
export type ProgressDrawer = (opts: ProgressOptions & { stream: NodeJS.WriteStream }) => Progress;

let drawer: ProgressDrawer | null = null;

/** Installs the terminal drawer {@link createProgress} uses on a TTY (null: plain lines); returns the previous one. */
export function setProgressDrawer(next: ProgressDrawer | null): ProgressDrawer | null {
  const prev = drawer;
  drawer = next;
  return prev;
}

/** `loss 0.693 | acc 0.5`: the fields of a progress update (integers as they are, others to 3 decimals). */
export function formatProgressFields(f: Record<string, string | number> = {}): string {
  return Object.entries(f)
    .map(([k, v]) => `${k} ${typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(3)) : v}`)
    .join(" | ");
}

/**
 * Creates a progress display for `total` units: on a TTY the installed drawer's bar
 * ({@link setProgressDrawer}); otherwise, or with no drawer, one line every `everySec` seconds.
 * `L3KIT_QUIET=1` silences it.
 */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  if (process.env.L3KIT_QUIET === "1") return { update() {}, log() {}, stop() {} };
  if (stream.isTTY && drawer) return drawer({ ...opts, stream });
  const every = (opts.everySec ?? 10) * 1000;
  const t0 = Date.now();
  let last = 0;
  return {
    update(done, fields) {
      const now = Date.now();
      if (now - last < every && done < opts.total) return;
      last = now;
      const elapsed = (now - t0) / 1000;
      const eta = done > 0 ? (elapsed / done) * (opts.total - done) : Number.NaN;
      stream.write(
        `${opts.label} ${done}/${opts.total} ${opts.unit ?? ""} | ${elapsed.toFixed(0)} s, ETA ${Number.isFinite(eta) ? eta.toFixed(0) : "?"} s | ${formatProgressFields(fields)}\n`,
      );
    },
    log: (line) => stream.write(`${line}\n`),
    stop() {},
  };
}
