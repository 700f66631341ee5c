import { readFileSync } from "node:fs";
import { type ConfigField, ConfigError } from "../lib/util";
import type { ConfigChoices, ConfigObject, ConfigValue } from "./types";

function isObject(v: unknown): v is Record<string, ConfigValue> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** All dotted key paths of a config's leaves (arrays are leaves). */
export function configKeys(obj: ConfigObject, prefix = ""): string[] {
  const keys: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (isObject(v)) keys.push(...configKeys(v as ConfigObject, p));
    else keys.push(p);
  }
  return keys;
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** The closest candidate to `name`, if any is reasonably close. */
export function suggest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = Math.min(editDistance(name, c), c.endsWith(`.${name}`) ? 0 : Number.POSITIVE_INFINITY);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

export type { ConfigChoices } from "./types";

/**
 * Throws a ConfigError unless `value` is one of `allowed`, naming the key, the allowed values and
 * the nearest one: `probe.feature: unknown value "grdi"; expected one of embedding, grid; did you mean "grid"?`.
 */
export function checkChoice(key: string, value: ConfigValue | undefined, allowed: readonly string[]): void {
  if (typeof value === "string" && allowed.includes(value)) return;
  const text = typeof value === "string" ? value : "";
  const hint = allowed.find((a) => a.toLowerCase() === text.toLowerCase()) ?? (text ? suggest(text, [...allowed]) : undefined);
  throw new ConfigError(
    `unknown value ${JSON.stringify(value)}; expected one of ${allowed.join(", ")}${hint ? `; did you mean "${hint}"?` : ""}`,
    {
      subject: key,
      reason: "unknown-value",
    },
  );
}

/** Checks every key of `choices` in a config with {@link checkChoice} (array values element by element). */
export function checkConfigChoices(config: ConfigObject, choices: ConfigChoices): void {
  for (const [key, allowed] of Object.entries(choices)) {
    const value = getPath(config, key);
    if (value === undefined) throw new Error(`config choices name '${key}', which is not a key of the config`);
    if (Array.isArray(value)) for (const item of value) checkChoice(key, item, allowed);
    else checkChoice(key, value, allowed);
  }
}

function getPath(obj: ConfigObject, key: string): ConfigValue | undefined {
  let cur: ConfigValue | undefined = obj;
  for (const part of key.split(".")) {
    if (!isObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function setPath(obj: ConfigObject, key: string, value: ConfigValue): void {
  const parts = key.split(".");
  let cur: Record<string, ConfigValue> = obj;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (!isObject(next)) cur[part] = {};
    cur = cur[part] as Record<string, ConfigValue>;
  }
  cur[parts[parts.length - 1] as string] = value;
}

/** Parses the text of `--set key=value`: JSON when it parses (numbers, booleans, arrays), else a string. */
export function parseSetValue(text: string): ConfigValue {
  try {
    return JSON.parse(text) as ConfigValue;
  } catch {
    return text;
  }
}

function typeName(v: ConfigValue | undefined): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/**
 * Applies one override, checking that the key exists in `defaults` and the value has the same type
 * (a `null` default accepts anything). Unknown keys fail with a suggestion.
 */
export function applyOverride(config: ConfigObject, defaults: ConfigObject, key: string, value: ConfigValue, source: string): void {
  const def = getPath(defaults, key);
  if (def === undefined) {
    const hint = suggest(key, configKeys(defaults));
    throw new ConfigError(`unknown config key '${key}'${hint ? ` — did you mean '${hint}'?` : ""}`, { subject: source });
  }
  if (isObject(def))
    throw new ConfigError(`'${key}' is a group; set one of its keys (${configKeys(def as ConfigObject, key).join(", ")})`, {
      subject: source,
    });
  if (def !== null && typeName(def) !== typeName(value)) {
    // "--set a=1e-4" parses as number; "--set name=3" for a string default is taken as the string "3".
    if (typeof def === "string" && (typeof value === "number" || typeof value === "boolean")) value = String(value);
    else
      throw new ConfigError(`'${key}' must be ${typeName(def)} (default ${JSON.stringify(def)}), got ${JSON.stringify(value)}`, {
        subject: source,
      });
  }
  setPath(config, key, value);
}

function flatten(obj: Record<string, ConfigValue>, prefix = ""): Array<[string, ConfigValue]> {
  const out: Array<[string, ConfigValue]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (isObject(v)) out.push(...flatten(v, p));
    else out.push([p, v]);
  }
  return out;
}

/** Deep copy of plain config data. */
export function cloneConfig<C extends ConfigObject>(c: C): C {
  return JSON.parse(JSON.stringify(c)) as C;
}

/**
 * Resolves an experiment's config: defaults ← `--config` file ← profile overrides ← `--set`s.
 * The profile is the `profile` key's final value (from the file or a --set). Unknown keys, values
 * of the wrong type, unknown profiles and values outside `choices` fail here, before anything runs.
 */
export function resolveConfig<C extends ConfigObject>(args: {
  defaults: C;
  profiles: Record<string, Partial<Record<string, ConfigValue>>>;
  /** Keys with a fixed set of values ({@link checkConfigChoices}), checked on the resolved config. */
  choices?: ConfigChoices;
  configFile?: string;
  sets?: string[];
}): C {
  const config = cloneConfig(args.defaults);
  let fileEntries: Array<[string, ConfigValue]> = [];
  if (args.configFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(args.configFile, "utf8"));
    } catch (err) {
      throw new ConfigError(`cannot read config: ${(err as Error).message}`, { subject: args.configFile, cause: err });
    }
    if (!isObject(parsed)) throw new ConfigError("config file must hold a JSON object", { subject: args.configFile });
    fileEntries = flatten(parsed);
  }
  const setEntries: Array<[string, ConfigValue]> = (args.sets ?? []).map((s) => {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new ConfigError(`--set expects key=value, got '${s}'`, { subject: "--set" });
    return [s.slice(0, eq).trim(), parseSetValue(s.slice(eq + 1))];
  });
  const profileEntry = [...fileEntries, ...setEntries].filter(([k]) => k === "profile").pop();
  const profile = profileEntry ? String(profileEntry[1]) : (config.profile as string | undefined);
  for (const [k, v] of fileEntries) applyOverride(config, args.defaults, k, v, args.configFile ?? "config");
  if (profile && profile !== "default") {
    checkChoice("profile", profile, ["default", ...Object.keys(args.profiles)]);
    const overrides = args.profiles[profile] ?? {};
    for (const [k, v] of Object.entries(overrides)) if (v !== undefined) applyOverride(config, args.defaults, k, v, `profile ${profile}`);
  }
  for (const [k, v] of setEntries) applyOverride(config, args.defaults, k, v, `--set ${k}`);
  checkConfigChoices(config, args.choices ?? {});
  return config;
}

/**
 * Checks a config that arrives already resolved (a queue job's payload) by the same rules as
 * {@link resolveConfig}: every key must be a key of `defaults` with a value of its type, no key may
 * be missing, and fixed-choice keys must hold one of their values. Returns a clean copy; throws a
 * ConfigError naming the first bad key.
 */
export function checkResolvedConfig<C extends ConfigObject>(args: {
  defaults: C;
  choices?: ConfigChoices;
  value: unknown;
  source: string;
}): C {
  if (!isObject(args.value)) throw new ConfigError("the config must be a JSON object", { subject: args.source });
  const config = cloneConfig(args.defaults);
  const entries = flatten(args.value as Record<string, ConfigValue>);
  for (const [k, v] of entries) applyOverride(config, args.defaults, k, v, `${args.source}: ${k}`);
  const given = new Set(entries.map(([k]) => k));
  const missing = configKeys(args.defaults).filter((k) => !given.has(k));
  if (missing.length) throw new ConfigError(`the config lacks ${missing.join(", ")}`, { subject: args.source });
  checkConfigChoices(config, args.choices ?? {});
  return config;
}

/**
 * A config schema's keys as indented `key  default   help (one of …)` lines, for --help: every key
 * with its default, help text and, for fixed-choice keys, the allowed values.
 */
export function formatConfig(fields: readonly ConfigField[]): string {
  const width = Math.max(...fields.map((f) => f.key.length), 4);
  const note = (f: ConfigField) => [f.description, f.choices ? `(one of ${f.choices.join(" | ")})` : undefined].filter(Boolean).join(" ");
  return fields.map((f) => `  ${f.key.padEnd(width)}  ${JSON.stringify(f.default)}${note(f) ? `   ${note(f)}` : ""}`).join("\n");
}

/** Plain config data from a parsed config (numbers, strings, booleans, null, arrays, objects); throws on anything else. */
export function toConfigValue(v: unknown, key: string): ConfigValue {
  if (v === null || typeof v === "number" || typeof v === "string" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map((x, i) => toConfigValue(x, `${key}[${i}]`));
  if (isPlainData(v)) return toConfigObject(v, key);
  throw new ConfigError(`is not plain config data (${typeof v})`, { subject: key });
}

/** {@link toConfigValue} of an object. */
export function toConfigObject(v: unknown, key: string): ConfigObject {
  if (!isPlainData(v)) throw new ConfigError("must be an object", { subject: key });
  const out: ConfigObject = {};
  for (const [k, x] of Object.entries(v)) out[k] = toConfigValue(x, key ? `${key}.${k}` : k);
  return out;
}

function isPlainData(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
