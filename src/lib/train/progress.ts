import { SingleBar } from "cli-progress";

/** Shows progress of a long loop: a bar on a TTY, plain periodic lines otherwise. */
export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  log(line: string): void;
  stop(): void;
}

/**
 * Creates a progress display for `total` units. On a TTY a cli-progress bar with ETA and the given
 * fields; otherwise one line every `everySec` seconds. `L3KIT_QUIET=1` silences it.
 */
export function createProgress(opts: {
  total: number;
  label: string;
  unit?: string;
  everySec?: number;
  stream?: NodeJS.WriteStream;
}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (process.env.L3KIT_QUIET === "1") return { update() {}, log() {}, stop() {} };
  const fmtFields = (f: Record<string, string | number> = {}) =>
    Object.entries(f)
      .map(([k, v]) => `${k} ${typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(3)) : v}`)
      .join(" | ");
  if (stream.isTTY) {
    const bar = new SingleBar({
      format: `${opts.label} [{bar}] {value}/{total} ${opts.unit ?? ""} | ETA {eta_formatted} | {fields}`,
      stream,
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
    });
    bar.start(opts.total, 0, { fields: "" });
    return {
      update: (done, fields) => bar.update(done, { fields: fmtFields(fields) }),
      log: (line) => {
        bar.stop();
        stream.write(`${line}\n`);
        bar.start(opts.total, (bar as unknown as { value: number }).value ?? 0, { fields: "" });
      },
      stop: () => bar.stop(),
    };
  }
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
        `${opts.label} ${done}/${opts.total} ${opts.unit ?? ""} | ${elapsed.toFixed(0)} s, ETA ${Number.isFinite(eta) ? eta.toFixed(0) : "?"} s | ${fmtFields(fields)}\n`,
      );
    },
    log: (line) => stream.write(`${line}\n`),
    stop() {},
  };
}
