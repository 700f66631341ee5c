/**
 * Model files: a folder with `model.json` (format, l3kit version, created-at, config, parameter
 * counts, caller metadata and the weights manifest) and `weights-<sha256[:16]>.bin` (every parameter
 * as little-endian float32, in graph order, at the manifest's offsets).
 *
 * Saving is crash-safe: the content-named weights file is written atomically first, then `model.json`
 * atomically (temp + rename), then stale weights files are removed. A reader therefore sees either the
 * old pair or the new one, and the SHA-256 in the manifest is checked on load.
 */
import { createHash } from "node:crypto";
import { existsSync, promises as fsp, readFileSync } from "node:fs";
import * as path from "node:path";
import { ConfigError, L3kitError, writeFileAtomic, writeJsonAtomic } from "../util";
import { diffL3Configs, L3_PRESET_NAMES, type L3NetConfig, type L3NetConfigInput, resolveL3Config, validateL3Config } from "./config";
import { getL3Weights, L3Net, type L3ParamCount, setL3Weights, type WeightEntry } from "./model";

/** The format tag of `model.json`. */
export const MODEL_FORMAT = "l3kit-model";
/** The current format version. */
export const MODEL_FORMAT_VERSION = 1;

/** One tensor in the weights file. */
export interface WeightManifestEntry {
  name: string;
  shape: number[];
  dtype: "float32";
  /** Byte offset in the weights file. */
  offset: number;
}

/** The contents of `model.json`. */
export interface ModelFileInfo {
  format: typeof MODEL_FORMAT;
  formatVersion: number;
  l3kitVersion: string;
  createdAt: string;
  config: L3NetConfig;
  paramCount: L3ParamCount;
  /** Whatever the caller passed to {@link saveModel} (JSON). */
  metadata: Record<string, unknown>;
  weights: { file: string; bytes: number; sha256: string; tensors: WeightManifestEntry[] };
}

let cachedVersion: string | undefined;
/** l3kit's version from its package.json (found by walking up from this file, else from the cwd). */
export function l3kitPackageVersion(): string {
  if (cachedVersion) return cachedVersion;
  const starts = [typeof __dirname === "string" ? __dirname : undefined, process.cwd()].filter((s): s is string => !!s);
  for (const start of starts) {
    let dir = start;
    for (let i = 0; i < 8; i++) {
      const p = path.join(dir, "package.json");
      if (existsSync(p)) {
        try {
          const pkg = JSON.parse(readFileSync(p, "utf8")) as { name?: string; version?: string };
          if (pkg.name === "l3kit" && pkg.version) {
            cachedVersion = pkg.version;
            return pkg.version;
          }
        } catch {
          // not JSON: keep walking
        }
      }
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return "unknown";
}

function modelJsonPath(p: string): { dir: string; json: string } {
  if (p.endsWith(".json")) return { dir: path.dirname(p), json: p };
  return { dir: p, json: path.join(p, "model.json") };
}

/**
 * Saves weights, config and metadata to the folder `dir` (created if needed; an existing model there
 * is replaced). Returns what was written to `model.json`.
 */
export async function saveModel(model: L3Net, dir: string, metadata: Record<string, unknown> = {}): Promise<ModelFileInfo> {
  const { dir: folder, json } = modelJsonPath(dir);
  const weights = getL3Weights(model);
  const tensors: WeightManifestEntry[] = [];
  let bytes = 0;
  for (const { name } of model.namedVariables()) {
    const w = weights[name] as WeightEntry;
    tensors.push({ name, shape: w.shape, dtype: "float32", offset: bytes });
    bytes += w.data.length * 4;
  }
  const buf = new Uint8Array(bytes);
  const view = new DataView(buf.buffer);
  for (const t of tensors) {
    const d = (weights[t.name] as WeightEntry).data;
    for (let i = 0; i < d.length; i++) view.setFloat32(t.offset + 4 * i, d[i] as number, true);
  }
  const sha256 = createHash("sha256").update(buf).digest("hex");
  const file = `weights-${sha256.slice(0, 16)}.bin`;
  const info: ModelFileInfo = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    l3kitVersion: l3kitPackageVersion(),
    createdAt: new Date().toISOString(),
    config: model.config,
    paramCount: model.paramCount(),
    metadata: JSON.parse(JSON.stringify(metadata ?? {})) as Record<string, unknown>,
    weights: { file, bytes, sha256, tensors },
  };
  await fsp.mkdir(folder, { recursive: true });
  await writeFileAtomic(path.join(folder, file), buf);
  await writeJsonAtomic(json, info);
  for (const f of await fsp.readdir(folder)) {
    if (/^weights-[0-9a-f]{16}\.bin$/.test(f) && f !== file) await fsp.rm(path.join(folder, f), { force: true });
  }
  return info;
}

/** Reads and checks `model.json` of a saved model (a folder or the json path). */
export async function readModelInfo(p: string): Promise<ModelFileInfo> {
  const { json } = modelJsonPath(p);
  let text: string;
  try {
    text = await fsp.readFile(json, "utf8");
  } catch (err) {
    throw new L3kitError(`cannot read the model file: ${(err as Error).message}`, { subject: json, reason: "missing", cause: err });
  }
  let info: ModelFileInfo;
  try {
    info = JSON.parse(text) as ModelFileInfo;
  } catch (err) {
    throw new L3kitError("model.json is not valid JSON", { subject: json, reason: "corrupt", cause: err });
  }
  if (info?.format !== MODEL_FORMAT)
    throw new L3kitError(`not an l3kit model (format ${JSON.stringify(info?.format)})`, { subject: json, reason: "bad-format" });
  if (info.formatVersion > MODEL_FORMAT_VERSION) {
    throw new L3kitError(`model format version ${info.formatVersion} is newer than this l3kit reads (${MODEL_FORMAT_VERSION})`, {
      subject: json,
      reason: "bad-format",
    });
  }
  try {
    info.config = validateL3Config(info.config);
  } catch (err) {
    throw new L3kitError(`the stored config is invalid: ${(err as Error).message}`, { subject: json, reason: "bad-config", cause: err });
  }
  return info;
}

/** Reads a saved model's weights by name (checks size and SHA-256). */
export async function readModelWeights(p: string): Promise<{ info: ModelFileInfo; weights: Record<string, WeightEntry> }> {
  const info = await readModelInfo(p);
  const { dir } = modelJsonPath(p);
  const file = path.join(dir, info.weights.file);
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (err) {
    throw new L3kitError(`cannot read the weights file: ${(err as Error).message}`, { subject: file, reason: "missing", cause: err });
  }
  if (buf.length !== info.weights.bytes) {
    throw new L3kitError(`weights file has ${buf.length} bytes, model.json says ${info.weights.bytes}`, {
      subject: file,
      reason: "truncated",
    });
  }
  const sha = createHash("sha256").update(buf).digest("hex");
  if (sha !== info.weights.sha256)
    throw new L3kitError("weights file does not match its SHA-256 in model.json", { subject: file, reason: "corrupt" });
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const weights: Record<string, WeightEntry> = {};
  for (const t of info.weights.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.offset + 4 * n > buf.length)
      throw new L3kitError(`tensor '${t.name}' runs past the end of the weights file`, { subject: file, reason: "corrupt" });
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(t.offset + 4 * i, true);
    weights[t.name] = { shape: t.shape, data };
  }
  return { info, weights };
}

/** Loads a saved model (weights, BN statistics and config) exactly as it was saved. */
export async function loadModel(p: string): Promise<L3Net> {
  const { info, weights } = await readModelWeights(p);
  const model = new L3Net(info.config, { initialize: false });
  try {
    setL3Weights(model, weights, { subject: modelJsonPath(p).json });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * Loads a saved model's weights into an existing model. The configs must agree (the `name` aside);
 * otherwise it fails with a message listing what differs, e.g.
 * "config differs: fusion 'concat' vs 'avol'; vision.widths [8,16,32,64] vs [16,32,64,128]"
 * (this model's value first).
 */
export async function loadWeightsInto(model: L3Net, p: string): Promise<ModelFileInfo> {
  const { info, weights } = await readModelWeights(p);
  const diffs = diffL3Configs(model.config, info.config);
  if (diffs.length)
    throw new L3kitError(`config differs: ${diffs.join("; ")}`, { subject: modelJsonPath(p).json, reason: "config-mismatch" });
  setL3Weights(model, weights, { subject: modelJsonPath(p).json });
  return info;
}

/**
 * A config from a string, for CLIs: a preset name (`paper`, `lite`, `tiny`), a saved model (its folder or
 * `model.json`) or a JSON file holding a full or partial config; `overrides` (e.g. `{ fusion: "avol" }`)
 * are merged on top and the result validated.
 */
export async function resolveModelConfig(spec: string, overrides: L3NetConfigInput = {}): Promise<L3NetConfig> {
  if ((L3_PRESET_NAMES as readonly string[]).includes(spec))
    return resolveL3Config({ ...overrides, preset: spec as L3NetConfigInput["preset"] });
  const { json } = modelJsonPath(spec);
  if (!spec.endsWith(".json") && existsSync(json)) return resolveL3Config(overrides, (await readModelInfo(json)).config);
  if (spec.endsWith(".json") && existsSync(spec)) {
    let raw: unknown;
    try {
      raw = JSON.parse(await fsp.readFile(spec, "utf8"));
    } catch (err) {
      throw new ConfigError(`not valid JSON: ${(err as Error).message}`, { subject: spec, cause: err });
    }
    if ((raw as { format?: string })?.format === MODEL_FORMAT) return resolveL3Config(overrides, (await readModelInfo(spec)).config);
    const base = resolveL3Config(raw as L3NetConfigInput);
    return resolveL3Config(overrides, base);
  }
  throw new ConfigError(`not a preset (${L3_PRESET_NAMES.join(", ")}), a saved model folder or a config .json file`, {
    subject: spec,
    reason: "bad-model-spec",
  });
}
