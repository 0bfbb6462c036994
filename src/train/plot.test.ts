import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { ConfigError, DataError } from "../errors.ts";
import { renderCurvePlot } from "./curve-plot.ts";
import { renderLinePlot, renderScatterPlot, writePlot } from "./plot.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from the IHDR chunk, which the PNG spec puts first: bytes 16–23, big-endian. */
function ihdrSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  assert.equal(String.fromCharCode(...png.subarray(12, 16)), "IHDR");
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Count of pixels in rows [y0, y1) that are clearly darker than the white background. */
async function darkPixels(png: Uint8Array, y0: number, y1: number): Promise<number> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = 0; x < info.width; x++) {
      const i = (y * info.width + x) * info.channels;
      if (data[i] + data[i + 1] + data[i + 2] < 3 * 160) n++;
    }
  }
  return n;
}

const lineSpec = {
  title: "Training loss",
  xLabel: "step",
  yLabel: "loss",
  width: 500,
  height: 320,
  series: [
    {
      name: "train",
      points: [
        [0, 2.3],
        [50, 1.1],
        [100, 0.7],
      ] as [number, number][],
    },
    {
      name: "eval",
      points: [
        [0, 2.4],
        [100, 0.9],
      ] as [number, number][],
    },
  ],
};

test("line plot: SVG names title and series; PNG has the requested size and visible ink", async () => {
  const { svg, png } = await renderLinePlot({ ...lineSpec, logY: true });
  assert.ok(svg.startsWith("<svg"));
  for (const text of ["Training loss", "train", "eval", "step", "loss"]) {
    assert.ok(svg.includes(`>${text}<`), `SVG lacks text "${text}"`);
  }
  assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
  assert.deepEqual(ihdrSize(png), { width: 500, height: 320 });
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 500);
  const background = [...data.subarray(0, 3)];
  assert.deepEqual(background, [255, 255, 255]);
  let differing = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    if (data[i] !== 255 || data[i + 1] !== 255 || data[i + 2] !== 255) differing++;
  }
  assert.ok(differing > 1000, `only ${differing} non-background pixels`);
});

test("the title is drawn with the bundled font (system fonts are off)", async () => {
  // With no usable font resvg drops text, leaving the title strip blank.
  const { png } = await renderLinePlot({ ...lineSpec, title: "MMMMMMMMMMMM" });
  assert.ok((await darkPixels(png, 0, 24)) > 50);
});

test("scatter plot: labels per point on a log x axis, default size 640×400", async () => {
  const { svg, png } = await renderScatterPlot({
    title: "Accuracy vs parameters",
    xLabel: "trainable parameters",
    yLabel: "accuracy",
    logX: true,
    series: [
      {
        name: "lora",
        points: [
          { x: 1e4, y: 0.81, label: "r=4" },
          { x: 1e5, y: 0.86, label: "r=32" },
        ],
      },
      { name: "qkv_depth", points: [{ x: 3e3, y: 0.84, label: "r=(8,8,3,4)" }] },
    ],
  });
  for (const text of ["Accuracy vs parameters", "lora", "qkv_depth", "r=4", "r=32", "r=(8,8,3,4)"]) {
    assert.ok(svg.includes(`>${text}<`), `SVG lacks text "${text}"`);
  }
  assert.deepEqual(ihdrSize(png), { width: 640, height: 400 });
  assert.ok((await darkPixels(png, 0, 400)) > 200);
});

test("scatter plot: labels of points at nearly the same place are drawn apart, not on top of each other", async () => {
  const points = [
    { x: 12_229, y: 0.8397, label: "qkv_depth" },
    { x: 12_189, y: 0.8395, label: "att_qkv_depth" },
    { x: 12_228, y: 0.8393, label: "depth" },
    { x: 12_288, y: 0.81, label: "lora" },
  ];
  const { svg } = await renderScatterPlot({ title: "t", xLabel: "x", yLabel: "y", logX: true, series: [{ name: "s", points }] });
  const labelY = (text: string) => {
    const m = new RegExp(`translate\\([^,]+,([^)]+)\\)"[^>]*>${text}<`).exec(svg) ?? assert.fail(`no positioned label "${text}" in the SVG`);
    return Number(m[1]);
  };
  const ys = ["qkv_depth", "att_qkv_depth", "depth"].map(labelY).sort((a, b) => a - b);
  for (let i = 1; i < ys.length; i++) assert.ok(ys[i] - ys[i - 1] >= 11, `labels ${ys.join(", ")} px: two are closer than a line of text`);
});

test("writePlot writes .svg and .png and leaves no temporary files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tenslora-plot-"));
  try {
    const base = join(dir, "plots", "loss");
    const out = await writePlot(base, { kind: "line", ...lineSpec });
    assert.deepEqual(out, { svgPath: `${base}.svg`, pngPath: `${base}.png` });
    assert.deepEqual((await readdir(join(dir, "plots"))).sort(), ["loss.png", "loss.svg"]);
    assert.ok((await readFile(out.svgPath, "utf8")).includes("Training loss"));
    assert.deepEqual([...(await readFile(out.pngPath)).subarray(0, 8)], PNG_SIGNATURE);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("unplottable input is rejected with typed errors", async () => {
  const one = (points: [number, number][]) => [{ name: "s", points }];
  await assert.rejects(renderLinePlot({ ...lineSpec, logY: true, series: one([[0, 0]]) }), DataError);
  await assert.rejects(renderLinePlot({ ...lineSpec, series: one([[0, NaN]]) }), /must be finite/);
  await assert.rejects(renderLinePlot({ ...lineSpec, series: one([]) }), DataError);
  await assert.rejects(renderLinePlot({ ...lineSpec, series: [...one([[0, 1]]), ...one([[1, 1]])] }), ConfigError);
  await assert.rejects(renderLinePlot({ ...lineSpec, width: 10 }), ConfigError);
});

/** The stroke of each line mark in a vega SVG, in drawing order. */
const lineStrokes = (svg: string) => [...svg.matchAll(/<path[^>]*aria-roledescription="line mark"[^>]*>/g)].map((m) => /stroke="([^"]+)"/.exec(m[0])?.[1]);

test("every series of a plot has its own colour, LoRA (the first) black; a lone point gets a padded axis inside the metric's bounds", async () => {
  const names = ["lora", "att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth", "head", "probe", "full", "x"];
  const series = names.map((name, i) => ({ name, points: [[0, i] as [number, number], [10, i + 1] as [number, number]] }));
  const { svg } = await renderLinePlot({ ...lineSpec, series });
  const strokes = lineStrokes(svg);
  assert.equal(strokes.length, names.length);
  assert.equal(new Set(strokes).size, names.length, `colours repeat: ${strokes.join(" ")}`);
  assert.equal(strokes[0], "#000000");
  const curve = await renderCurvePlot({
    title: "t",
    xLabel: "parameters",
    yLabel: "test accuracy (%)",
    yBounds: [0, 100],
    lines: names.slice(0, 8).map((name, i) => ({ name, points: [{ x: 1000 * (i + 1), y: 70 + i, lo: 69 + i, hi: 71 + i }] })),
  });
  assert.equal(new Set(lineStrokes(curve.svg)).size, 8);
  const one = await renderLinePlot({ ...lineSpec, yBounds: [0, 100], series: [{ name: "accuracy", points: [[24, 99.5]] }] });
  const ticks = [...one.svg.matchAll(/aria-label="Y-axis[^"]*values from (-?[\d.]+) to (-?[\d.]+)"/g)][0];
  assert.ok(ticks, "the y axis describes its range");
  const [lo, hi] = [Number(ticks[1]), Number(ticks[2])];
  assert.ok(lo >= 0 && hi <= 100 && lo < 99.5 && hi >= 99.5 && hi - lo <= 30, `y axis [${lo}, ${hi}]`);
});
