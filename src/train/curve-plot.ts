/**
 * Metric against parameter count, one line per construction with 95 % error bars, and
 * horizontal reference lines (the linear probe, full fine-tuning): the paper's budget figure.
 */
import { DataError } from "../errors.ts";
import { linearAxis } from "./axis.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { type Layer, type PlotFrame, render, seriesEncoding } from "./plot.ts";

export interface CurvePoint {
  x: number;
  y: number;
  /** Interval bounds; absent (or NaN) for a point without one. */
  lo?: number;
  hi?: number;
}

export interface CurveSpec extends PlotFrame {
  lines: readonly { name: string; points: readonly CurvePoint[] }[];
  /** Drawn across the plot at y, dashed, labelled at the right. */
  references?: readonly { name: string; y: number }[];
}

export async function renderCurvePlot(spec: CurveSpec) {
  const rows = spec.lines.flatMap((l) =>
    l.points.map((p) => {
      if (!(p.x > 0 && Number.isFinite(p.x) && Number.isFinite(p.y)))
        throw new DataError(`curve "${l.name}": points need x > 0 (log axis) and a finite y, got (${p.x}, ${p.y})`);
      const bar = p.lo !== undefined && p.hi !== undefined && Number.isFinite(p.lo) && Number.isFinite(p.hi);
      return { series: l.name, x: p.x, y: p.y, lo: bar ? p.lo! : p.y, hi: bar ? p.hi! : p.y };
    }),
  );
  if (!rows.length) throw new DataError("a curve plot needs at least one point");
  const refs = (spec.references ?? []).map((r) => ({ ref: r.name, ry: r.y, label: `${r.name} ${Number(r.y.toPrecision(4))}` }));
  const yAxis = linearAxis([...rows.flatMap((r) => [r.lo, r.hi]), ...refs.map((r) => r.ry)], { bounds: spec.yBounds });
  const yScale = { domain: [yAxis.lo, yAxis.hi], nice: false, zero: false };
  const x = { field: "x", type: "quantitative", title: spec.xLabel, scale: { type: "log", nice: false, padding: 24 } };
  const y = { field: "y", type: "quantitative", title: spec.yLabel, scale: yScale };
  const names = spec.lines.map((l) => l.name);
  const style = seriesEncoding(names);
  // a marker shape per construction as well as a colour, so neighbouring lines stay apart in print
  const shape = { ...style.color, scale: { domain: names } };
  const layers: Layer[] = [
    { mark: { type: "line", point: { filled: true, size: 50 } }, encoding: { x, y, ...style, shape } },
    { mark: { type: "errorbar", ticks: true }, encoding: { x, y: { ...y, field: "lo", title: spec.yLabel }, y2: { field: "hi" }, color: style.color } },
  ];
  if (refs.length) {
    layers.push(
      {
        data: { values: refs },
        mark: { type: "rule", strokeDash: [6, 4], color: "#555" },
        encoding: { y: { field: "ry", type: "quantitative", scale: yScale } },
      },
      {
        data: { values: refs },
        mark: { type: "text", align: "right", baseline: "bottom", x: "width", dx: -4, dy: -2, color: "#333" },
        encoding: { y: { field: "ry", type: "quantitative", scale: yScale }, text: { field: "label" } },
      },
    );
  }
  return render(spec, rows, { layer: layers });
}

/** Writes `<path>.svg` and `<path>.png`. */
export async function writeCurvePlot(pathWithoutExt: string, spec: CurveSpec): Promise<void> {
  const { svg, png } = await renderCurvePlot(spec);
  writeFileAtomic(`${pathWithoutExt}.svg`, svg);
  writeFileAtomic(`${pathWithoutExt}.png`, png);
}
