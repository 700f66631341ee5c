import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { afterEach, describe, it } from "node:test";
import * as vm from "node:vm";
import { gunzipSync } from "node:zlib";
import {
  type Figure,
  figureHtml,
  learningCurves,
  liveLearningCurves,
  loadPlotly,
  plotlyBundle,
  saveHtml,
  setDisplaySink,
  show,
  tableHtml,
  type VizDisplaySink,
} from "../../src/lib/viz";
import { loaderHtmlFor, type PlotlyEmbed } from "../../src/lib/viz/plotly";
import { tempDir } from "../helpers";

const fig = (name: string): Figure => ({ data: [{ type: "scatter", name, x: [1, 2], y: [3, 4] }], layout: { title: { text: name } } });

function scripts(html: string): string[] {
  return [...html.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
}

/** Runs l3kit's page scripts in a vm with a minimal DOM: enough to check the loader/queue logic. */
function fakePage() {
  const intervals: ReturnType<typeof setInterval>[] = [];
  const ids = new Set<string>();
  const ctx: Record<string, unknown> = {
    console,
    atob,
    Blob,
    Response,
    DecompressionStream,
    drawn: [] as string[],
    setInterval: (f: () => void, ms: number) => {
      const h = setInterval(f, ms);
      intervals.push(h);
      return h;
    },
    clearInterval,
  };
  ctx.window = ctx;
  const runScript = (s: { text: string }) => vm.runInContext(s.text, ctx);
  ctx.document = {
    getElementById: (id: string) => (ids.has(id) ? { id } : null),
    createElement: () => ({ text: "" }),
    head: { appendChild: runScript },
  };
  vm.createContext(ctx);
  return {
    ctx,
    load(html: string) {
      for (const m of html.matchAll(/<div id="([^"]+)"/g)) ids.add(m[1]!);
      for (const s of scripts(html)) vm.runInContext(s, ctx);
    },
    drawn: () => ctx.drawn as string[],
    async until(n: number) {
      for (let i = 0; i < 200 && (ctx.drawn as string[]).length < n; i++) await new Promise((r) => setTimeout(r, 10));
    },
    close: () => {
      for (const h of intervals) clearInterval(h);
    },
  };
}

/** A stand-in for plotly.js: counts its evaluations and records newPlot calls. */
const STANDIN = {
  version: "0.0-test",
  source:
    "window.evals=(window.evals||0)+1;window.Plotly={newPlot:function(el,data,layout,config){window.drawn.push(el.id+':'+data[0].name+':'+config.responsive)}};/* </script> inside a comment */",
};

afterEach(() => setDisplaySink(undefined));

describe("figureHtml and the in-page loader", () => {
  it("embeds the figure as script-safe JSON in a div + newPlot script", () => {
    const html = figureHtml(fig("</script><b>x"), { divId: "d1" });
    assert.match(html, /^<div id="d1" class="l3kit-plot" style="width:100%;height:450px;"><\/div>/);
    assert.equal(scripts(html).length, 1);
    assert.ok(!scripts(html)[0]!.includes("</script"), "payload cannot close the script element");
    assert.ok(html.includes("\\u003c/script\\u003e\\u003cb\\u003ex"));
    assert.ok(!html.includes("plotly.js v"), "no bundle unless asked");
  });

  for (const embed of ["gzip", "inline"] as PlotlyEmbed[]) {
    it(`draws figures queued before the ${embed} loader, and later ones at once; loads the library once`, async () => {
      const page = fakePage();
      try {
        page.load(figureHtml(fig("early"), { divId: "a" }));
        assert.deepEqual(page.drawn(), [], "waits for Plotly");
        page.load(loaderHtmlFor({ ...STANDIN }, embed));
        await page.until(1);
        assert.deepEqual(page.drawn(), ["a:early:true"]);
        page.load(loaderHtmlFor({ ...STANDIN }, embed)); // a second loader on the same page is a no-op
        page.load(figureHtml(fig("late"), { divId: "b" }));
        assert.deepEqual(page.drawn(), ["a:early:true", "b:late:true"]);
        assert.equal(page.ctx.evals, 1);
      } finally {
        page.close();
      }
    });
  }

  it("draws when Plotly arrives from elsewhere (polling)", async () => {
    const page = fakePage();
    try {
      page.load(figureHtml(fig("p"), { divId: "c" }));
      vm.runInContext(STANDIN.source, page.ctx);
      await page.until(1);
      assert.deepEqual(page.drawn(), ["c:p:true"]);
    } finally {
      page.close();
    }
  });
});

describe("saveHtml", () => {
  it("writes a standalone page with the real plotly bundle exactly once for two figures (gzip)", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, "sub", "page.html");
      await saveHtml([fig("one"), tableHtml([{ a: 1 }]), fig("two")], file, { title: "Run <1>" });
      const html = readFileSync(file, "utf8");
      assert.match(html, /^<!DOCTYPE html>/);
      assert.ok(html.includes("<title>Run &lt;1&gt;</title>"));
      const b64s = [...html.matchAll(/var b64="([A-Za-z0-9+/=]+)"/g)];
      assert.equal(b64s.length, 1, "one bundle");
      const source = gunzipSync(Buffer.from(b64s[0]![1]!, "base64")).toString("utf8");
      assert.equal(source, readFileSync(plotlyBundle().file, "utf8"), "the gzip payload is the installed plotly.js");
      assert.equal((html.match(/class="l3kit-plot"/g) ?? []).length, 2);
      assert.equal((html.match(/class="l3kit-table"/g) ?? []).length, 1);
      assert.ok(html.length < 3_000_000, `page is ${html.length} bytes`);
    } finally {
      cleanup();
    }
  });

  it("can inline plotly.js as a plain script, once", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, "page.html");
      await saveHtml([fig("one"), fig("two")], file, { embed: "inline" });
      const html = readFileSync(file, "utf8");
      const src = readFileSync(plotlyBundle().file, "utf8");
      const probe = src.slice(src.length >> 1, (src.length >> 1) + 300);
      assert.equal(html.split(probe).length - 1, 1);
      assert.ok(!html.includes("var b64="));
    } finally {
      cleanup();
    }
  });

  it("a page of HTML fragments only carries no plotly.js", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, "t.html");
      await saveHtml(tableHtml([{ a: 1 }]), file);
      assert.ok(readFileSync(file, "utf8").length < 2000);
    } finally {
      cleanup();
    }
  });
});

function recorder() {
  const out: string[] = [];
  const displays: string[][] = [];
  const sink: VizDisplaySink = {
    html: (s) => out.push(s),
    newDisplay: () => {
      const d: string[] = [];
      displays.push(d);
      return { html: (s) => d.push(s) };
    },
  };
  return { out, displays, sink };
}

const isLoader = (s: string) => s.includes("(gzip, base64) */");

describe("show", () => {
  it("sends plotly.js once, before the first figure only", () => {
    const r = recorder();
    setDisplaySink(r.sink);
    show(fig("a"));
    show(tableHtml([{ x: 1 }]));
    show([fig("b"), fig("c")]);
    assert.deepEqual(
      r.out.map((s) => (isLoader(s) ? "loader" : s.includes("l3kit-plot") ? "figure" : "html")),
      ["loader", "figure", "html", "figure", "figure"],
    );
    assert.equal(loadPlotly(), false, "already sent");
    assert.equal(loadPlotly({ force: true }), true);
    assert.ok(isLoader(r.out.at(-1)!));
  });

  it("does not send plotly.js for HTML-only output, and is silent outside a notebook", () => {
    const r = recorder();
    setDisplaySink(r.sink);
    show("<p>hi</p>");
    assert.deepEqual(r.out, ["<p>hi</p>"]);
    setDisplaySink(null);
    const prev = process.env.L3KIT_QUIET;
    process.env.L3KIT_QUIET = "1";
    try {
      show(fig("x"));
      assert.equal(loadPlotly(), false);
    } finally {
      process.env.L3KIT_QUIET = prev;
    }
  });

  it("detects no tslab kernel in plain node", () => {
    setDisplaySink(undefined);
    let printed = "";
    const orig = console.log;
    console.log = (s: string) => {
      printed += s;
    };
    try {
      const prev = process.env.L3KIT_QUIET;
      delete process.env.L3KIT_QUIET;
      show(learningCurves([{ step: 1, loss: 1 }], { title: "t" }));
      process.env.L3KIT_QUIET = prev;
    } finally {
      console.log = orig;
    }
    assert.match(printed, /figure "t" with 1 trace\(s\) \(not in a notebook/);
  });
});

describe("liveLearningCurves", () => {
  it("redraws one display in place and ends with the final state", () => {
    const r = recorder();
    setDisplaySink(r.sink);
    const live = liveLearningCurves({ minIntervalMs: 0 });
    for (let i = 0; i < 5; i++) live.push({ step: i, loss: 1 / (i + 1) });
    assert.equal(r.displays.length, 1, "one output");
    assert.equal(r.displays[0]!.length, 5, "redrawn on each push");
    assert.equal(r.out.length, 1);
    assert.ok(isLoader(r.out[0]!), "plotly.js went out first, as its own output");
    live.show();
    const last = r.displays[0]!.at(-1)!;
    assert.ok(last.includes('"x":[0,1,2,3,4]'));
    assert.deepEqual(live.figure().data[0]!.y, [1, 0.5, 0.33333, 0.25, 0.2]);
  });

  it("throttles redraws; show() draws what the throttle skipped", () => {
    const r = recorder();
    setDisplaySink(r.sink);
    const live = liveLearningCurves({ minIntervalMs: 60_000 });
    live.push({ step: 0, loss: 1 });
    live.push([
      { step: 1, loss: 0.5 },
      { step: 2, loss: 0.25 },
    ]);
    assert.equal(r.displays[0]!.length, 1);
    live.show();
    assert.equal(r.displays[0]!.length, 2);
    assert.ok(r.displays[0]![1]!.includes('"x":[0,1,2]'));
    assert.equal(live.rows.length, 3);
  });

  it("only collects rows outside a notebook", () => {
    setDisplaySink(null);
    const live = liveLearningCurves();
    live.push({ step: 0, loss: 1 });
    assert.equal(live.rows.length, 1);
  });
});

describe("tableHtml", () => {
  it("escapes HTML, formats numbers and keeps mean ± std strings", () => {
    const html = tableHtml([
      { model: "L3 <lite> & co", acc: 0.742134, n: 1900, note: "0.742 ± 0.010" },
      { model: 'say "hi"', acc: Number.NaN, extra: true },
    ]);
    assert.ok(html.includes("L3 &lt;lite&gt; &amp; co"));
    assert.ok(html.includes("say &quot;hi&quot;"));
    assert.ok(!html.includes("<lite>"));
    assert.ok(html.includes(">0.742<"));
    assert.ok(html.includes(">1900<"));
    assert.ok(html.includes(">0.742 ± 0.010<"));
    assert.ok(html.includes(">NaN<"));
    assert.deepEqual(
      [...html.matchAll(/<th[^>]*>([^<]*)<\/th>/g)].map((m) => m[1]),
      ["model", "acc", "n", "note", "extra"],
    );
    assert.match(html, /<th style="[^"]*text-align:right">acc<\/th>/);
    assert.match(html, /<th style="[^"]*text-align:left">note<\/th>/);
  });

  it("takes { columns, values } (a danfojs DataFrame's shape), column picks and a row limit", () => {
    const df = {
      columns: ["name", "x"],
      values: [
        ["a", 1.23456e-7],
        ["b", 12345.6789],
      ],
      shape: [2, 2],
    };
    const html = tableHtml(df, { caption: "t<1>", columns: ["x"], maxRows: 1 });
    assert.ok(html.includes("<caption"));
    assert.ok(html.includes("t&lt;1&gt;"));
    assert.ok(html.includes(">1.23e-7<"));
    assert.ok(!html.includes("12345"));
    assert.ok(html.includes("1 more rows"));
    assert.throws(() => tableHtml(df, { columns: ["nope"] }), /no column "nope"/);
  });

  it("renders a real danfojs DataFrame and Series", async () => {
    const dfd = (await import("danfojs-node")) as unknown as {
      DataFrame: new (rows: Array<Record<string, unknown>>) => { columns: string[]; values: unknown[][] } & Record<string, unknown>;
    };
    const df = new dfd.DataFrame([
      { fusion: "concat", acc: 0.7412 },
      { fusion: "distance", acc: 0.7 },
    ]);
    const html = tableHtml(df);
    assert.deepEqual(
      [...html.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]),
      ["concat", "0.741", "distance", "0.700"],
    );
    const series = df.acc as { columns: string[]; values: unknown[][] };
    assert.deepEqual(
      [...tableHtml(series).matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]),
      ["0.741", "0.700"],
    );
  });
});
