/** MetricsLogger: writes metrics.jsonl, one row per `logEvery` steps, with validation fields on evaluation rows. */
import { appendFileSync, existsSync, promises as fsp, readFileSync } from "node:fs";
import { errorMessage, L3kitError, writeError, writeFileAtomic } from "../../util";
import type { StepInfo, Trainer, TrainerCallback } from "../trainer";

/** One line of metrics.jsonl. Validation fields appear on evaluation rows. */
export interface MetricsRow {
  step: number;
  epoch: number;
  loss: number;
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  lr: number;
  samplesPerSec: number;
  elapsedSec: number;
}

/** Result of a validation pass. */
export interface EvalResult {
  step: number;
  valLoss: number;
  valAccuracy: number;
  n: number;
}

/** Sums over the steps not yet logged. */
interface MetricsWindow {
  loss: number;
  accuracy: number;
  n: number;
  samples: number;
  seconds: number;
}

/** Options of {@link MetricsLogger}. */
export interface MetricsLoggerOptions {
  /** The metrics.jsonl file. */
  file: string;
  /** Write a row every N steps (and at evaluations, the last step, and a stop that asks for a last row). */
  logEvery: number;
  /** Called with each row after it is written. */
  onRow?: (row: MetricsRow) => void | Promise<void>;
  /** Called with each validation result and its row, before the row is written. */
  onEval?: (result: EvalResult, row: MetricsRow) => void | Promise<void>;
}

/**
 * The rows of metrics.jsonl text. A partial last line (a writer cut off by a crash) is dropped; any
 * other line that is not a JSON object with a numeric `step` is an error naming `file:line`.
 */
export function parseMetricsJsonl(text: string, file: string): MetricsRow[] {
  const lines = text.split("\n");
  let last = lines.length - 1;
  while (last >= 0 && (lines[last] as string).trim() === "") last--;
  const rows: MetricsRow[] = [];
  for (let i = 0; i <= last; i++) {
    const line = (lines[i] as string).trim();
    if (line === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (i === last) break;
      throw new L3kitError(`line is not valid JSON: ${errorMessage(err)}`, { subject: `${file}:${i + 1}`, reason: "bad-json", cause: err });
    }
    if (typeof value !== "object" || value === null || Array.isArray(value) || typeof (value as { step?: unknown }).step !== "number")
      throw new L3kitError("expected a JSON object with a numeric step", { subject: `${file}:${i + 1}`, reason: "bad-row" });
    rows.push(value as MetricsRow);
  }
  return rows;
}

/** The rows of a run's metrics.jsonl ({@link parseMetricsJsonl}); a missing file is an error. */
export async function readMetricsJsonl(file: string): Promise<MetricsRow[]> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    throw new L3kitError("cannot read metrics file", { subject: file, reason: "missing", cause: err });
  }
  return parseMetricsJsonl(text, file);
}

/** The rows of metrics.jsonl for a resume: none when the file does not exist yet. */
export function readMetricsRows(file: string): MetricsRow[] {
  return existsSync(file) ? parseMetricsJsonl(readFileSync(file, "utf8"), file) : [];
}

const emptyWindow = (): MetricsWindow => ({ loss: 0, accuracy: 0, n: 0, samples: 0, seconds: 0 });

/**
 * Logs the mean training loss and accuracy of each window of steps to metrics.jsonl. Its state is
 * the window's sums not yet logged: a run stopped between rows (by a signal) puts them into the
 * checkpoint, and on resume the rows written after that checkpoint are dropped, so a resumed run
 * logs exactly the rows an uninterrupted one would.
 */
export class MetricsLogger implements TrainerCallback {
  readonly stateKey = "metrics";
  /** The latest row written (or kept on resume). */
  last: MetricsRow | null = null;
  private window: MetricsWindow = emptyWindow();

  constructor(private readonly opts: MetricsLoggerOptions) {}

  async onTrainStart(trainer: Trainer): Promise<void> {
    const from = trainer.resumedFrom;
    if (from === null) {
      await writeFileAtomic(this.opts.file, "");
      return;
    }
    // Rows after the checkpoint came from the interrupted run; they are recomputed.
    const kept = readMetricsRows(this.opts.file).filter((r) => r.step <= from);
    await writeFileAtomic(this.opts.file, kept.map((r) => `${JSON.stringify(r)}\n`).join(""));
    this.last = kept[kept.length - 1] ?? null;
  }

  async onStepEnd(trainer: Trainer, info: StepInfo): Promise<void> {
    const w = this.window;
    w.loss += info.loss;
    w.accuracy += info.accuracy;
    w.n++;
    w.samples += info.samples;
    w.seconds += info.seconds;
    const stop = trainer.stopRequest;
    const lastRow = info.step >= trainer.config.steps || (stop !== null && stop.flush !== false);
    if (info.step % this.opts.logEvery !== 0 && !info.evaluation && !lastRow) return;
    const row: MetricsRow = {
      step: info.step,
      epoch: info.epoch,
      loss: w.loss / w.n,
      trainAccuracy: w.accuracy / w.n,
      lr: info.lr,
      samplesPerSec: w.seconds > 0 ? w.samples / w.seconds : 0,
      elapsedSec: Math.round(info.elapsedSec * 10) / 10,
    };
    const ev = info.evaluation;
    if (ev) {
      row.valLoss = ev.valLoss;
      row.valAccuracy = ev.valAccuracy;
      await this.opts.onEval?.({ step: ev.step, valLoss: ev.valLoss, valAccuracy: ev.valAccuracy, n: ev.n }, row);
    }
    try {
      appendFileSync(this.opts.file, `${JSON.stringify(row)}\n`);
    } catch (err) {
      throw writeError(this.opts.file, err);
    }
    this.last = row;
    this.window = emptyWindow();
    await this.opts.onRow?.(row);
  }

  stateDict(): MetricsWindow {
    return { ...this.window };
  }

  loadStateDict(state: unknown): void {
    const s = (state ?? {}) as Partial<MetricsWindow>;
    this.window = { loss: s.loss ?? 0, accuracy: s.accuracy ?? 0, n: s.n ?? 0, samples: s.samples ?? 0, seconds: s.seconds ?? 0 };
  }
}
