/**
 * The terminal progress bar (cli-progress) that the `l3kit` command installs into the library
 * ({@link setProgressDrawer}): training steps, data steps and queue cells draw with it on a TTY.
 */
import { SingleBar } from "cli-progress";
import { formatProgressFields, type Progress, type ProgressDrawer, setProgressDrawer } from "../lib/train/progress";

/** A cli-progress bar with ETA and the update's fields. */
export const barProgress: ProgressDrawer = (opts) => {
  const bar = new SingleBar({
    format: `${opts.label} [{bar}] {value}/{total} ${opts.unit ?? ""} | ETA {eta_formatted} | {fields}`,
    stream: opts.stream,
    hideCursor: true,
    etaBuffer: 50,
    fps: 5,
  });
  bar.start(opts.total, 0, { fields: "" });
  const progress: Progress = {
    update: (done, fields) => bar.update(done, { fields: formatProgressFields(fields) }),
    log: (line) => {
      bar.stop();
      opts.stream.write(`${line}\n`);
      bar.start(opts.total, (bar as unknown as { value: number }).value ?? 0, { fields: "" });
    },
    stop: () => bar.stop(),
  };
  return progress;
};

/** Makes the library's progress displays draw {@link barProgress} on a terminal. */
export function installProgressBar(): void {
  setProgressDrawer(barProgress);
}
