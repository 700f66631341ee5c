/**
 * Errors that name the file (or row, or config key) and the cause, so that a failed item in a
 * long batch job can be reported and skipped.
 */
export class L3kitError extends Error {
  /** The file, manifest row or config key the error is about, when there is one. */
  readonly subject?: string;
  /** A short machine-readable reason, e.g. "no-audio-track", "truncated", "missing". */
  readonly reason: string;

  constructor(message: string, opts: { subject?: string; reason?: string; cause?: unknown } = {}) {
    super(opts.subject ? `${opts.subject}: ${message}` : message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "L3kitError";
    this.subject = opts.subject;
    this.reason = opts.reason ?? "error";
  }
}

/** An invalid configuration value, found before any work starts. */
export class ConfigError extends L3kitError {
  constructor(message: string, opts: { subject?: string; reason?: string; cause?: unknown } = {}) {
    super(message, { reason: "bad-config", ...opts });
    this.name = "ConfigError";
  }
}

/** The message of anything thrown, for reports. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
