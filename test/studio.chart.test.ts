/**
 * The studio's charts in Debian's Chromium, styled by the page's own stylesheet: each legend
 * name is drawn in its line's colour (the computed fill, which the stylesheet could override),
 * no two series share a colour, tick labels are distinct, and accuracy axes are percentages
 * that stay inside [0, 100] even for a single run.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { bundleForBrowser } from "../studio/build.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../studio/chromium.ts";
import { CHROMIUM_DEP, needs } from "./system-deps.ts";
import { tempDir } from "./make-data.ts";

const skip = needs(CHROMIUM_DEP);
let browser: Browser | undefined;
let page: Page;

before(async () => {
  if (skip) return;
  const dir = tempDir("tenslora-chart-");
  writeFileSync(join(dir, "entry.ts"), `import * as chart from ${JSON.stringify(resolve("studio/chart.ts"))};\nObject.assign(window, { chart });\n`);
  await bundleForBrowser({ entry: join(dir, "entry.ts") }, join(dir, "out"), false);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  await page.setContent(`<style>${readFileSync("studio/studio.css", "utf8")}</style><svg id="c" viewBox="0 0 420 240"></svg>`);
  await page.addScriptTag({ type: "module", content: readFileSync(join(dir, "out", "entry.js"), "utf8") });
  await page.waitForFunction("window.chart");
});

after(() => browser?.close());

type Drawn = { legend: { text: string; fill: string }[]; strokes: string[]; xTicks: string[]; yTicks: string[] };

/** Draws with `call` and reads back the computed colours and the tick labels. */
function draw(call: string): Promise<Drawn> {
  return page.evaluate(`(() => {
    const svg = document.getElementById("c");
    window.chart.${call};
    const texts = (sel) => [...svg.querySelectorAll(sel)].map((e) => e.textContent);
    return {
      legend: [...svg.querySelectorAll("text.legend")].map((e) => ({ text: e.textContent, fill: getComputedStyle(e).fill })),
      strokes: [...svg.querySelectorAll("polyline, circle")].map((e) => getComputedStyle(e)[e.tagName === "circle" ? "fill" : "stroke"]),
      xTicks: texts("text.tick-x"),
      yTicks: texts("text.tick-y"),
    };
  })()`) as Promise<Drawn>;
}

const assertDistinct = (xs: string[], what: string) => assert.equal(new Set(xs).size, xs.length, `${what} repeat: ${xs.join(" ")}`);

test("line chart: each legend name has its line's colour, no two lines share one, ticks are distinct", { skip }, async () => {
  const names = ["lora", "att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth", "head"];
  const series = names.map((name, i) => ({ name, points: [1, 2, 3].map((s) => [s, 2 - i / 10 - s / 10]) }));
  const d = await draw(`lineChart(svg, ${JSON.stringify(series)}, "step")`);
  assert.deepEqual(
    d.legend.map((l) => l.text),
    names,
  );
  assert.deepEqual(
    d.legend.map((l) => l.fill),
    d.strokes,
    "legend fill = line stroke",
  );
  assertDistinct(d.strokes, "line colours");
  assertDistinct(d.xTicks, "x ticks");
  assertDistinct(d.yTicks, "y ticks");
});

test("accuracy charts in percent: one run's point gets a padded range inside [0, 100]; 12,2xx parameters get distinct ticks", { skip }, async () => {
  const one = await draw(`lineChart(svg, [{ name: "lora", points: [[8, 87.5]] }], "step", { bounds: [0, 100] })`);
  const y = one.yTicks.map(Number);
  assert.ok(y.length >= 3 && y[0] >= 0 && y.at(-1)! <= 100 && y[0] <= 87.5 && y.at(-1)! >= 87.5, `y ticks ${one.yTicks}`);
  assert.equal(one.legend[0].fill, one.strokes[0]);
  const runs = [12_210, 12_244, 12_288, 12_300].map((x, i) => ({ x, y: 70 + i, label: `run${i}` }));
  const d = await draw(`scatterChart(svg, ${JSON.stringify(runs)}, "parameters", { bounds: [0, 100] })`);
  assertDistinct(d.xTicks, "x ticks");
  assertDistinct(d.yTicks, "y ticks");
  assert.ok(d.xTicks.length >= 3, `x ticks ${d.xTicks}`);
  assert.deepEqual(
    d.legend.map((l) => l.fill),
    d.strokes,
    "label fill = point fill",
  );
  assertDistinct(d.strokes, "point colours");
});
