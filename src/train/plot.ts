/**
 * Run plots (training curves, metric vs parameter count) as SVG and PNG.
 *
 * Pipeline: a vega-lite spec → `compile` → a headless vega View (`renderer: "none"`) → `toSVG()`
 * → resvg rasterises with the DejaVu Sans file bundled in assets/fonts and system fonts off, so a
 * PNG looks the same on every machine, including containers with no fonts at all.
 * (vega 6.3.0's build reports `version` "5.33.1": a stale string in its bundle, not an old copy.)
 */

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Resvg } from "@resvg/resvg-js";
import { View, parse } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { ConfigError, DataError, internal } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { linearAxis } from "./axis.ts";
import { SERIES_COLOURS, seriesStyle } from "./palette.ts";

const FONT_FILE = fileURLToPath(new URL("../../assets/fonts/DejaVuSans.ttf", import.meta.url));
const FONT_FAMILY = "DejaVu Sans";
/** Series with at most this many points get a marker per point (a lone eval point stays visible). */
const MAX_POINTS_WITH_MARKERS = 50;

export type Point = readonly [x: number, y: number];

/** What every plot has: title, axis titles and the full image size in pixels. */
export interface PlotFrame {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Image width in pixels, legend and padding included; default 640. */
  width?: number;
  /** Image height in pixels; default 400. */
  height?: number;
  /** The values y can take (e.g. [0, 100] for a percentage): a flat series' padded axis stays inside. */
  yBounds?: readonly [number, number];
}

export interface LineSeries {
  name: string;
  points: readonly Point[];
}

export interface LinePlotSpec extends PlotFrame {
  series: readonly LineSeries[];
  logY?: boolean;
}

export interface ScatterPoint {
  x: number;
  y: number;
  /** Text drawn beside the point, e.g. the construction and ranks. */
  label?: string;
}

export interface ScatterSeries {
  name: string;
  points: readonly ScatterPoint[];
}

export interface ScatterPlotSpec extends PlotFrame {
  series: readonly ScatterSeries[];
  /** Log x axis, for parameter counts spanning orders of magnitude. */
  logX?: boolean;
  logY?: boolean;
}

export type PlotSpec = ({ kind: "line" } & LinePlotSpec) | ({ kind: "scatter" } & ScatterPlotSpec);

export interface RenderedPlot {
  svg: string;
  png: Uint8Array;
}

interface Row {
  series: string;
  x: number;
  y: number;
  label: string;
  /** Where the label is drawn (scatter plots): y, or below a label it would overlap. */
  labelY?: number;
}

/**
 * One line per series (e.g. train and eval loss against the step).
 * @example
 *   const { svg, png } = await renderLinePlot({
 *     title: "Loss", xLabel: "step", yLabel: "loss", logY: true,
 *     series: [{ name: "train", points: [[0, 2.3], [100, 0.9]] }],
 *   });
 */
export async function renderLinePlot(spec: LinePlotSpec): Promise<RenderedPlot> {
  const rows = toRows(
    spec.series.map((s) => ({ name: s.name, points: s.points.map(([x, y]) => ({ x, y })) })),
    { logX: false, logY: spec.logY ?? false },
  );
  const longest = Math.max(...spec.series.map((s) => s.points.length));
  return render(spec, rows, {
    mark: { type: "line", point: longest <= MAX_POINTS_WITH_MARKERS },
    encoding: encoding(spec, rows, { logX: false, logY: spec.logY ?? false, padding: 0 }),
  });
}

/**
 * Points with optional labels, coloured by series (e.g. accuracy against trainable parameters,
 * one series per adapter construction).
 */
export async function renderScatterPlot(spec: ScatterPlotSpec): Promise<RenderedPlot> {
  const logX = spec.logX ?? false;
  const logY = spec.logY ?? false;
  const rows = toRows(spec.series, { logX, logY });
  // Inset the axes so points (and their labels) do not sit on the plot's border.
  const enc = encoding(spec, rows, { logX, logY, padding: 24 });
  const points = { mark: { type: "point", filled: true, size: 60 } };
  // Points at nearly equal (x, y) — constructions at one budget with close accuracies — would
  // print their labels on top of each other: lay the points out once, move colliding labels
  // apart in pixels, and draw each label at its own y.
  const view = buildView(spec, rows, { encoding: enc, layer: [points] });
  let placed: Row[];
  try {
    await view.runAsync();
    placed = placeLabels(rows, view.scale("x") as Scale, view.scale("y") as Scale);
  } finally {
    view.finalize();
  }
  return render(spec, placed, {
    encoding: enc,
    layer: [
      points,
      {
        // aria off: the point marks describe the data; a moved label's y is not a data value
        mark: { type: "text", align: "left", baseline: "bottom", dx: 5, dy: -3, aria: false },
        encoding: { y: { ...(enc.y as Layer), field: "labelY" }, text: { field: "label", type: "nominal" } },
      },
    ],
  });
}

type Scale = ((v: number) => number) & { invert(px: number): number };

/** A label's box in pixels, approximately (DejaVu Sans at 11 px: about 6.5 px a character). */
const LABEL_HEIGHT = 12;
const CHAR_WIDTH = 6.5;

/**
 * Each row with `labelY`: its own y, or, where its label would overlap one already placed
 * (top to bottom), the y just below that label.
 */
function placeLabels(rows: Row[], x: Scale, y: Scale): Row[] {
  const order = rows.map((r, i) => ({ i, px: x(r.x), py: y(r.y), w: CHAR_WIDTH * r.label.length })).sort((a, b) => a.py - b.py);
  const done: { px: number; py: number; w: number }[] = [];
  const out = rows.map((r) => ({ ...r, labelY: r.y }));
  for (const l of order) {
    if (!rows[l.i].label) continue;
    let py = l.py;
    for (let moved = true; moved; ) {
      moved = false;
      for (const d of done) {
        const overlapX = l.px < d.px + d.w && d.px < l.px + l.w;
        if (overlapX && Math.abs(py - d.py) < LABEL_HEIGHT) {
          py = d.py + LABEL_HEIGHT;
          moved = true;
        }
      }
    }
    done.push({ px: l.px, py, w: l.w });
    out[l.i].labelY = y.invert(py);
  }
  return out;
}

/** Writes `<path>.svg` and `<path>.png` (each through a temporary file and a rename). */
export async function writePlot(pathWithoutExt: string, spec: PlotSpec): Promise<{ svgPath: string; pngPath: string }> {
  const { svg, png } = spec.kind === "line" ? await renderLinePlot(spec) : await renderScatterPlot(spec);
  const svgPath = `${pathWithoutExt}.svg`;
  const pngPath = `${pathWithoutExt}.png`;
  writeFileAtomic(svgPath, svg);
  writeFileAtomic(pngPath, png);
  return { svgPath, pngPath };
}

export type Layer = Record<string, unknown>;

/** A vega-lite body (marks, encodings) over `rows`, framed and rendered to SVG and PNG. */
export async function render(frame: PlotFrame, rows: readonly object[], body: Layer): Promise<RenderedPlot> {
  const view = buildView(frame, rows, body);
  try {
    const svg = await view.toSVG();
    return { svg, png: rasterise(svg) };
  } finally {
    view.finalize();
  }
}

function buildView(frame: PlotFrame, rows: readonly object[], body: Layer): View {
  const width = frame.width ?? 640;
  const height = frame.height ?? 400;
  checkSize("width", width);
  checkSize("height", height);
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: frame.title,
    width,
    height,
    // "fit" + "padding": width/height are the whole image, not just the plotting area.
    autosize: { type: "fit", contains: "padding" },
    padding: 8,
    background: "white",
    config: { font: FONT_FAMILY },
    data: { values: rows },
    ...body,
  } as TopLevelSpec;
  return new View(parse(compile(spec).spec), { renderer: "none" });
}

function encoding(
  frame: PlotFrame & { series: readonly { name: string }[] },
  rows: readonly Row[],
  axes: { logX: boolean; logY: boolean; padding: number },
): Layer {
  const x = rows.map((r) => r.x);
  const y = rows.map((r) => r.y);
  return {
    x: { field: "x", type: "quantitative", title: frame.xLabel, scale: scale(x, axes.logX, axes.padding) },
    y: { field: "y", type: "quantitative", title: frame.yLabel, scale: scale(y, axes.logY, axes.padding, frame.yBounds) },
    ...seriesEncoding(frame.series.map((s) => s.name)),
  };
}

/**
 * A linear axis gets the shared padded range (a lone point is not stretched over an arbitrary
 * span) and never 0 forced in: metrics and losses rarely start at 0, and 0 would flatten the curves.
 */
function scale(values: readonly number[], log: boolean, padding: number, bounds?: readonly [number, number]): Layer {
  if (log) return { type: "log", padding };
  const axis = linearAxis(values, { bounds });
  return { domain: [axis.lo, axis.hi], nice: false, zero: false, padding };
}

/** Colour (and, past the palette, dash) by series, legend in the caller's order, not alphabetical. */
export function seriesEncoding(names: readonly string[]): { color: Layer; strokeDash?: Layer } {
  const styles = names.map((_, i) => seriesStyle(i));
  const domain = [...names];
  return {
    color: { field: "series", type: "nominal", title: null, sort: domain, scale: { domain, range: styles.map((s) => s.colour) }, legend: { labelLimit: 280 } },
    ...(names.length > SERIES_COLOURS.length
      ? { strokeDash: { field: "series", type: "nominal", sort: domain, scale: { domain, range: styles.map((s) => [...s.dash]) }, legend: null } }
      : {}),
  };
}

function rasterise(svg: string): Uint8Array {
  if (!existsSync(FONT_FILE)) internal(`bundled plot font missing at ${FONT_FILE}`);
  const resvg = new Resvg(svg, {
    font: {
      fontFiles: [FONT_FILE],
      loadSystemFonts: false,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
  });
  return resvg.render().asPng();
}

function toRows(series: readonly { name: string; points: readonly ScatterPoint[] }[], axes: { logX: boolean; logY: boolean }): Row[] {
  const names = new Set<string>();
  const rows: Row[] = [];
  for (const s of series) {
    if (names.has(s.name)) {
      throw new ConfigError(`plot series names must be unique (they key the legend); "${s.name}" repeats`);
    }
    names.add(s.name);
    s.points.forEach((p, i) => {
      const where = `series "${s.name}" point ${i}`;
      checkValue(`${where} x`, p.x, axes.logX);
      checkValue(`${where} y`, p.y, axes.logY);
      rows.push({ series: s.name, x: p.x, y: p.y, label: p.label ?? "" });
    });
  }
  if (rows.length === 0) throw new DataError("a plot needs at least one point; every series is empty");
  return rows;
}

function checkValue(what: string, v: number, log: boolean): void {
  if (!Number.isFinite(v)) throw new DataError(`${what} must be finite; got ${v}`);
  if (log && v <= 0) {
    throw new DataError(`${what} must be > 0 on a log axis; got ${v}. Use a linear axis`);
  }
}

function checkSize(what: string, px: number): void {
  if (!(Number.isInteger(px) && px >= 100 && px <= 8192)) {
    throw new ConfigError(`plot ${what} must be an integer number of pixels in [100, 8192]; got ${px}`);
  }
}
