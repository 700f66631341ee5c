/**
 * Where a job queue lives: a `redis://` or `rediss://` URL, parsed and checked before anything
 * connects, and a redacted form of it for logs and provenance (never the password).
 */
import { ConfigError } from "../util";

/** A parsed queue URL. */
export interface QueueTarget {
  /** The URL as given, password included: hand it to the Redis client only, never print it. */
  url: string;
  /** `redis[s]://host:port/db`, with `***` in place of any user and password: safe for logs and provenance. */
  redacted: string;
  /** `rediss://`: TLS. */
  tls: boolean;
  host: string;
  port: number;
  db: number;
  /** Whether the URL (or `L3KIT_QUEUE_PASSWORD`) gives a password. */
  hasPassword: boolean;
}

/** The queue every l3kit coordinator and worker uses unless `--queue-name` / `L3KIT_QUEUE_NAME` says otherwise. */
export const DEFAULT_QUEUE_NAME = "l3kit-cells";

/**
 * Parses `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). The password may also
 * come from `L3KIT_QUEUE_PASSWORD` (kept out of the command line and shell history); it is used
 * when the URL has none. Throws a ConfigError naming what is wrong, without echoing the password.
 */
export function parseQueueUrl(text: string, env: NodeJS.ProcessEnv = process.env): QueueTarget {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConfigError("expected a URL such as redis://127.0.0.1:6379/0 or rediss://:PASSWORD@host:6380/0", {
      subject: "--queue",
      reason: "bad-url",
    });
  }
  const safe = `${u.protocol}//${u.username || u.password ? "***@" : ""}${u.host}${u.pathname}`;
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    throw new ConfigError(`${safe}: the scheme must be redis:// or rediss:// (TLS), not ${u.protocol}//`, {
      subject: "--queue",
      reason: "bad-url",
    });
  if (!u.hostname) throw new ConfigError(`${safe}: no host`, { subject: "--queue", reason: "bad-url" });
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, "");
  if (dbText !== "" && !/^\d+$/.test(dbText))
    throw new ConfigError(`${safe}: the path must be a database number (/0, /1, …), got /${dbText}`, {
      subject: "--queue",
      reason: "bad-url",
    });
  if (u.search || u.hash)
    throw new ConfigError(`${safe}: query strings and fragments are not understood; use --queue-name for the queue's name`, {
      subject: "--queue",
      reason: "bad-url",
    });
  const db = dbText === "" ? 0 : Number(dbText);
  const envPassword = env.L3KIT_QUEUE_PASSWORD;
  let url = text;
  if (!u.password && envPassword) {
    u.password = envPassword;
    url = u.toString();
  }
  const hasPassword = !!u.password;
  const redacted = `${u.protocol}//${u.username || hasPassword ? "***@" : ""}${u.hostname}:${port}/${db}`;
  return { url, redacted, tls: u.protocol === "rediss:", host: u.hostname, port, db, hasPassword };
}

/** Replaces every `redis[s]://user:password@` in a text (an error message, a log line) by `redis[s]://***@`. */
export function redactCredentials(text: string): string {
  return text.replace(/(rediss?:\/\/)[^/\s@]*@/g, "$1***@");
}

/**
 * Checks a queue's name: letters, digits, `-`, `_` and `.` (BullMQ keys are `bull:<name>:…`, so a
 * `:` would break them).
 */
export function checkQueueName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name))
    throw new ConfigError(`'${name}': a queue name is 1–100 letters, digits, '.', '_' or '-' (no ':')`, {
      subject: "--queue-name",
      reason: "bad-name",
    });
  return name;
}
