/**
 * Configs declared once, as zod schemas: a schema gives a config's type (`z.output`), its defaults
 * (`.default()` on every leaf), its checks and their messages, and its `--help` text (`.describe()`).
 * These helpers make the leaves with one wording per kind of check, read the defaults, help texts and
 * fixed choices back out of a schema, derive a schema with other defaults, and turn a failed parse
 * into a {@link ConfigError} that names the dotted key and the cause.
 */
import { z } from "zod";
import { ConfigError } from "./errors";

/** A value as a message shows it: numbers as written (NaN and Infinity too), anything else as JSON. */
const shown = (v: unknown): string => (typeof v === "number" ? String(v) : String(JSON.stringify(v)));

/**
 * The one wording of an integer check: `must be an integer >= 1, got 0`, or, with a maximum,
 * `must be an integer in [2, 1000], got 1` (`∞` for an unbounded maximum given as Infinity).
 */
export function integerMessage(value: unknown, min: number, max?: number): string {
  const range = max === undefined ? `>= ${min}` : `in [${min}, ${max === Number.POSITIVE_INFINITY ? "∞" : max}]`;
  return `must be an integer ${range}, got ${shown(value)}`;
}

/** Null when `value` is an integer in [min, max], else its {@link integerMessage}. */
export function integerProblem(value: unknown, min = 1, max?: number): string | null {
  const ok = typeof value === "number" && Number.isInteger(value) && value >= min && (max === undefined || value <= max);
  return ok ? null : integerMessage(value, min, max);
}

/** Throws a ConfigError naming `key` unless `value` is an integer in [min, max] ({@link integerMessage}). */
export function checkInteger(value: unknown, key: string, min = 1, max?: number): asserts value is number {
  const problem = integerProblem(value, min, max);
  if (problem) throw new ConfigError(problem, { subject: key });
}

/** An integer in [min, max]: every failure (not a number, a fraction, out of range) says {@link integerMessage}. */
export function intSchema(min = 0, max?: number): z.ZodNumber {
  const error = (iss: { input: unknown }) => integerMessage(iss.input, min, max);
  const s = z.number({ error }).int({ error }).min(min, { error });
  return max === undefined || max === Number.POSITIVE_INFINITY ? s : s.max(max, { error });
}

/** A number that passes `ok`; a failure says `must be <what>, got <value>`. */
export function numberSchema(what: string, ok: (v: number) => boolean = Number.isFinite): z.ZodNumber {
  const error = (iss: { input: unknown }) => `must be ${what}, got ${shown(iss.input)}`;
  return z.number({ error }).refine(ok, { error });
}

/** One of fixed values; a failure says `must be one of 'a', 'b', got "c"`. */
export function choiceSchema<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: (iss) => `must be one of ${values.map((v) => `'${v}'`).join(", ")}, got ${shown(iss.input)}` });
}

/** Text; a failure says `must be <what>, got <value>`. */
export function textSchema(what = "text"): z.ZodString {
  return z.string({ error: (iss) => `must be ${what}, got ${shown(iss.input)}` });
}

/** true or false. */
export function boolSchema(): z.ZodBoolean {
  return z.boolean({ error: (iss) => `must be true or false, got ${shown(iss.input)}` });
}

/** The dotted key of an issue path: `a.b[1]`. */
function dotted(prefix: string, path: readonly PropertyKey[]): string {
  let key = prefix;
  for (const p of path) key = typeof p === "number" ? `${key}[${p}]` : key ? `${key}.${String(p)}` : String(p);
  return key;
}

/**
 * Parses `value` with `schema` (filling defaults); a failure is a ConfigError naming the dotted key
 * (`prefix` and the issue's path, e.g. `train.batchSize`) and the first issue's message.
 */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, prefix = ""): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = dotted(prefix, issue?.path ?? []);
  throw new ConfigError(issue?.message ?? "invalid", key ? { subject: key } : {});
}

/** One leaf of a config schema, as `--help` lists it. */
export interface ConfigField {
  /** Dotted key, e.g. `train.lr`. */
  key: string;
  default: unknown;
  description?: string;
  /** The allowed values of an enum leaf (or of each element of an array of enums). */
  choices?: readonly string[];
}

/** A schema's own description, or that of a schema it wraps (default, optional, nullable). */
function describedAs(s: z.ZodType): string | undefined {
  let cur: z.ZodType | undefined = s;
  while (cur) {
    if (cur.description) return cur.description;
    cur =
      cur instanceof z.ZodDefault || cur instanceof z.ZodOptional || cur instanceof z.ZodNullable ? (cur.unwrap() as z.ZodType) : undefined;
  }
  return undefined;
}

/** The schema under default, optional and nullable wrappers. */
function core(s: z.ZodType): z.ZodType {
  let cur = s;
  while (cur instanceof z.ZodDefault || cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.unwrap() as z.ZodType;
  return cur;
}

function choicesOf(s: z.ZodType): readonly string[] | undefined {
  const c = core(s);
  if (c instanceof z.ZodEnum) return c.options.map(String);
  if (c instanceof z.ZodArray) return choicesOf(c.element as z.ZodType);
  return undefined;
}

/** Every leaf of an object schema (nested objects walked, arrays are leaves), in declaration order. */
export function configFields(schema: z.ZodObject, prefix = ""): ConfigField[] {
  const out: ConfigField[] = [];
  for (const [k, field] of Object.entries(schema.shape) as Array<[string, z.ZodType]>) {
    const key = prefix ? `${prefix}.${k}` : k;
    const c = core(field);
    if (c instanceof z.ZodObject && !(field instanceof z.ZodDefault)) {
      out.push(...configFields(c, key));
      continue;
    }
    const description = describedAs(field);
    const choices = choicesOf(field);
    out.push({
      key,
      default: field instanceof z.ZodDefault ? field.def.defaultValue : undefined,
      ...(description ? { description } : {}),
      ...(choices ? { choices } : {}),
    });
  }
  return out;
}

/** The defaults of an object schema as one nested object, keys in declaration order. */
export function schemaDefaults<S extends z.ZodObject>(schema: S): z.output<S> {
  return schema.parse({ ...nestedEmpties(schema) });
}

/** `{}` for every nested object field without a default, so that parsing fills their leaves' defaults. */
function nestedEmpties(schema: z.ZodObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, field] of Object.entries(schema.shape) as Array<[string, z.ZodType]>) {
    const c = core(field);
    if (c instanceof z.ZodObject && !(field instanceof z.ZodDefault)) out[k] = nestedEmpties(c);
  }
  return out;
}

/** A deep partial of plain config data (arrays are replaced whole). */
export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The same schema with other defaults (nested objects given as nested partials) and other help texts
 * (`help`: dotted keys relative to `schema`). Key order, checks and messages stay; e.g. an
 * experiment's training section is the library's with a longer `steps` and its own help.
 */
export function withDefaults<S extends z.ZodObject>(schema: S, defaults: DeepPartial<z.output<S>>, help: Record<string, string> = {}): S {
  const shape: Record<string, z.ZodType> = {};
  const names = new Set([...Object.keys(defaults as object), ...Object.keys(help).map((k) => k.split(".")[0] as string)]);
  for (const k of names) {
    const field = schema.shape[k] as z.ZodType | undefined;
    if (!field) throw new Error(`withDefaults: '${k}' is not a key of the schema`);
    const value = (defaults as Record<string, unknown>)[k];
    const nestedHelp = Object.fromEntries(
      Object.entries(help)
        .filter(([h]) => h.startsWith(`${k}.`))
        .map(([h, text]) => [h.slice(k.length + 1), text]),
    );
    const c = core(field);
    if (c instanceof z.ZodObject && !(field instanceof z.ZodDefault)) {
      shape[k] = withDefaults(c, isPlainObject(value) ? value : {}, nestedHelp);
      continue;
    }
    const description = help[k] ?? describedAs(field);
    let next = value === undefined ? field : (field instanceof z.ZodDefault ? (field.unwrap() as z.ZodType) : field).default(value);
    if (description) next = next.describe(description);
    shape[k] = next;
  }
  // Replacing fields keeps their places; the checks of the object (refinements) are not carried: add them after.
  return z.object({ ...schema.shape, ...shape }) as unknown as S;
}
