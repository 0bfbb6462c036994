/** Small SVG charts for the studio page: line charts of curves and a scatter of runs. */
import { type Axis, type AxisOptions, linearAxis, logAxis } from "../src/train/axis.ts";
import { seriesStyle } from "../src/train/palette.ts";

const W = 420;
const H = 240;
const PAD = { left: 44, right: 90, top: 10, bottom: 26 };
const NS = "http://www.w3.org/2000/svg";

export type Series = { name: string; points: [number, number][] };

/** Steps and losses are never negative: their axes stop at 0. */
export const NON_NEGATIVE = { bounds: [0, Number.POSITIVE_INFINITY] } as const;

function el(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Text in a series' colour: a style, which (unlike the fill attribute) outranks the page's `svg text` rule. */
const coloured = (colour: string) => ({ style: `fill: ${colour}` });

function frame(svg: SVGSVGElement, x: Axis, y: Axis, logX: boolean) {
  svg.replaceChildren();
  const fx = (v: number) => (logX ? Math.log10(v) : v);
  const sx = (v: number) => PAD.left + ((fx(v) - fx(x.lo)) / (fx(x.hi) - fx(x.lo))) * (W - PAD.left - PAD.right);
  const sy = (v: number) => H - PAD.bottom - ((v - y.lo) / (y.hi - y.lo)) * (H - PAD.top - PAD.bottom);
  svg.append(el("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, stroke: "#999" }));
  svg.append(el("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, stroke: "#999" }));
  y.ticks.forEach((v, i) => svg.append(el("text", { x: PAD.left - 4, y: sy(v) + 3, "text-anchor": "end", class: "tick-y" }, y.labels[i])));
  x.ticks.forEach((v, i) => svg.append(el("text", { x: sx(v), y: H - PAD.bottom + 14, "text-anchor": "middle", class: "tick-x" }, x.labels[i])));
  return { sx, sy };
}

function axisTitle(svg: SVGSVGElement, text: string): void {
  svg.append(el("text", { x: (W - PAD.right + PAD.left) / 2, y: H - 2, "text-anchor": "middle" }, text));
}

/** One line per series, its name beside the plot in its colour; `y` and `x` bound the values (e.g. [0, 100] for percentages, [0, ∞) for steps). */
export function lineChart(svg: SVGSVGElement, series: Series[], xLabel: string, y: AxisOptions = {}, x: AxisOptions = {}): void {
  const all = series.flatMap((s) => s.points);
  const { sx, sy } = frame(
    svg,
    linearAxis(
      all.map((p) => p[0]),
      x,
    ),
    linearAxis(
      all.map((p) => p[1]),
      y,
    ),
    false,
  );
  series.forEach((s, i) => {
    const { colour, dash } = seriesStyle(i);
    if (s.points.length)
      svg.append(
        el("polyline", {
          points: s.points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "),
          fill: "none",
          stroke: colour,
          "stroke-width": 1.5,
          "stroke-dasharray": dash.join(" ") || "none",
        }),
      );
    if (s.points.length === 1) svg.append(el("circle", { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 2.5, fill: colour }));
    svg.append(el("text", { x: W - PAD.right + 6, y: PAD.top + 10 + 12 * i, class: "legend", ...coloured(colour) }, s.name));
  });
  axisTitle(svg, xLabel);
}

/** One labelled point per run on a log x axis; `y` bounds the values. */
export function scatterChart(svg: SVGSVGElement, points: { x: number; y: number; label: string }[], xLabel: string, y: AxisOptions = {}): void {
  const shown = points.filter((p) => p.x > 0 && Number.isFinite(p.y));
  const { sx, sy } = frame(
    svg,
    logAxis(shown.map((p) => p.x)),
    linearAxis(
      shown.map((p) => p.y),
      y,
    ),
    true,
  );
  shown.forEach((p, i) => {
    const { colour } = seriesStyle(i);
    svg.append(el("circle", { cx: sx(p.x), cy: sy(p.y), r: 4, fill: colour }));
    svg.append(el("text", { x: sx(p.x) + 6, y: sy(p.y) + 3, class: "legend", ...coloured(colour) }, p.label));
  });
  axisTitle(svg, xLabel);
}
