/** Small SVG charts for the studio page: line charts of curves and a scatter of runs. */
const W = 420;
const H = 240;
const PAD = { left: 44, right: 90, top: 10, bottom: 26 };
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
const NS = "http://www.w3.org/2000/svg";

export type Series = { name: string; points: [number, number][] };

function el(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function extent(xs: number[], log = false): [number, number] {
  const v = log ? xs.filter((x) => x > 0).map(Math.log10) : xs;
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (!Number.isFinite(lo)) return [0, 1];
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

const fmt = (v: number) => Number(v.toPrecision(3)).toLocaleString("en-US");

function frame(svg: SVGSVGElement, xr: [number, number], yr: [number, number], logX: boolean) {
  svg.replaceChildren();
  const sx = (x: number) => PAD.left + (((logX ? Math.log10(x) : x) - xr[0]) / (xr[1] - xr[0])) * (W - PAD.left - PAD.right);
  const sy = (y: number) => H - PAD.bottom - ((y - yr[0]) / (yr[1] - yr[0])) * (H - PAD.top - PAD.bottom);
  svg.append(el("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, stroke: "#999" }));
  svg.append(el("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, stroke: "#999" }));
  for (let i = 0; i <= 4; i++) {
    const y = yr[0] + ((yr[1] - yr[0]) * i) / 4;
    svg.append(el("text", { x: PAD.left - 4, y: sy(y) + 3, "text-anchor": "end" }, fmt(y)));
    const xv = xr[0] + ((xr[1] - xr[0]) * i) / 4;
    svg.append(el("text", { x: PAD.left + ((W - PAD.left - PAD.right) * i) / 4, y: H - PAD.bottom + 14, "text-anchor": "middle" }, fmt(logX ? 10 ** xv : xv)));
  }
  return { sx, sy };
}

export function lineChart(svg: SVGSVGElement, series: Series[], xLabel: string): void {
  const all = series.flatMap((s) => s.points);
  const { sx, sy } = frame(svg, extent(all.map((p) => p[0])), extent(all.map((p) => p[1])), false);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    if (s.points.length)
      svg.append(el("polyline", { points: s.points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 1.5 }));
    if (s.points.length === 1) svg.append(el("circle", { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 2.5, fill: colour }));
    svg.append(el("text", { x: W - PAD.right + 6, y: PAD.top + 10 + 12 * i, fill: colour }, s.name));
  });
  svg.append(el("text", { x: (W - PAD.right + PAD.left) / 2, y: H - 2, "text-anchor": "middle" }, xLabel));
}

export function scatterChart(svg: SVGSVGElement, points: { x: number; y: number; label: string }[], xLabel: string): void {
  const shown = points.filter((p) => p.x > 0 && Number.isFinite(p.y));
  const { sx, sy } = frame(
    svg,
    extent(
      shown.map((p) => p.x),
      true,
    ),
    extent(shown.map((p) => p.y)),
    true,
  );
  shown.forEach((p, i) => {
    const colour = COLOURS[i % COLOURS.length];
    svg.append(el("circle", { cx: sx(p.x), cy: sy(p.y), r: 4, fill: colour }));
    svg.append(el("text", { x: sx(p.x) + 6, y: sy(p.y) + 3, fill: colour }, p.label));
  });
  svg.append(el("text", { x: (W - PAD.right + PAD.left) / 2, y: H - 2, "text-anchor": "middle" }, xLabel));
}
