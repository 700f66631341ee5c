import { ConfigError } from "../util";
import { escapeHtml } from "./figure";

/** Column-major table input: column names and one array of values per row. */
export interface ColumnsTable {
  columns: string[];
  values: unknown[][];
}

/** Options of {@link tableHtml}. */
export interface TableHtmlOptions {
  /** Decimals for non-integer numbers; default 3. */
  decimals?: number;
  caption?: string;
  /** Show only these columns, in this order. */
  columns?: string[];
  /** Show at most this many rows (a note says how many were left out). */
  maxRows?: number;
}

/**
 * Formats a number for a table: integers as they are, other numbers with `decimals` decimals
 * (default 3), very large or very small ones in exponent form; NaN as "NaN".
 */
export function formatNumber(x: number, decimals = 3): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 10 ** -decimals || a >= 1e9)) return x.toExponential(2);
  return x.toFixed(decimals);
}

function cellText(v: unknown, decimals: number): { text: string; numeric: boolean } {
  if (v === null || v === undefined) return { text: "", numeric: false };
  if (typeof v === "number") return { text: formatNumber(v, decimals), numeric: true };
  if (typeof v === "bigint") return { text: String(v), numeric: true };
  if (typeof v === "string") return { text: v, numeric: false };
  if (typeof v === "boolean") return { text: String(v), numeric: false };
  if (v instanceof Date) return { text: v.toISOString(), numeric: false };
  try {
    return { text: JSON.stringify(v), numeric: false };
  } catch {
    return { text: String(v), numeric: false };
  }
}

function normalise(input: Array<Record<string, unknown>> | ColumnsTable): ColumnsTable {
  if (Array.isArray(input)) {
    const columns: string[] = [];
    const seen = new Set<string>();
    for (const row of input) {
      for (const k of Object.keys(row)) {
        if (!seen.has(k)) {
          seen.add(k);
          columns.push(k);
        }
      }
    }
    return { columns, values: input.map((r) => columns.map((c) => r[c])) };
  }
  const { columns, values } = input as { columns: unknown; values: unknown };
  if (!Array.isArray(columns) || !Array.isArray(values)) {
    throw new ConfigError("expected an array of row objects, or { columns, values } (e.g. a danfojs DataFrame)", {
      subject: "tableHtml",
      reason: "bad-input",
    });
  }
  // A danfojs Series has 1-D values; show it as one column.
  const rows = values.map((r) => (Array.isArray(r) ? r : [r]));
  return { columns: columns.map(String), values: rows };
}

/**
 * A clean, escaped HTML table from row objects, `{ columns, values }`, or a danfojs DataFrame
 * (anything with `.columns` and `.values`). Numbers are right-aligned and formatted (3 decimals by
 * default); strings such as "0.742 ± 0.010" are kept as they are.
 *
 * ```ts
 * import { show, tableHtml } from "l3kit";
 * show(tableHtml(df, { caption: "AVC accuracy by fusion" }));
 * ```
 */
export function tableHtml(input: Array<Record<string, unknown>> | ColumnsTable, opts: TableHtmlOptions = {}): string {
  const decimals = opts.decimals ?? 3;
  const t = normalise(input);
  let colIdx = t.columns.map((_, i) => i);
  if (opts.columns) {
    colIdx = opts.columns.map((c) => {
      const i = t.columns.indexOf(c);
      if (i < 0)
        throw new ConfigError(`no column "${c}" (have: ${t.columns.join(", ")})`, { subject: "tableHtml", reason: "missing-column" });
      return i;
    });
  }
  const limit = opts.maxRows ?? Number.POSITIVE_INFINITY;
  const shown = t.values.slice(0, limit);
  const cells = shown.map((r) => colIdx.map((i) => cellText(r[i], decimals)));
  const numericCol = colIdx.map((_, j) => cells.length > 0 && cells.every((r) => r[j]!.numeric || r[j]!.text === ""));
  const th = "padding:4px 10px;border-bottom:2px solid #888;";
  const td = "padding:3px 10px;border-bottom:1px solid #ddd;";
  const head = colIdx
    .map((i, j) => `<th style="${th}text-align:${numericCol[j] ? "right" : "left"}">${escapeHtml(t.columns[i]!)}</th>`)
    .join("");
  const body = cells
    .map(
      (r) =>
        `<tr>${r
          .map(
            (c, j) =>
              `<td style="${td}text-align:${numericCol[j] ? "right" : "left"}${numericCol[j] ? ";font-variant-numeric:tabular-nums" : ""}">${escapeHtml(c.text)}</td>`,
          )
          .join("")}</tr>`,
    )
    .join("\n");
  const caption = opts.caption
    ? `<caption style="caption-side:top;text-align:left;font-weight:600;padding:4px 0">${escapeHtml(opts.caption)}</caption>`
    : "";
  const more =
    t.values.length > shown.length ? `<div style="font-size:12px;color:#666">… ${t.values.length - shown.length} more rows</div>` : "";
  return `<table class="l3kit-table" style="border-collapse:collapse;font-size:13px">${caption}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>${more}`;
}
