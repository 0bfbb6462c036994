/**
 * Axis ranges and ticks for plots: a padded range around the data (a single point or a flat
 * series gets room around it instead of an arbitrary ±0.5), clipped to the values the quantity
 * can take (accuracy in [0, 100] %), with distinct "nice" ticks (1, 2 or 5 × 10^k apart) labelled
 * at the precision that tells them apart. No DOM: the studio's charts and the vega plots share it.
 */
import { nice, tickStep, ticks } from "d3-array";

export interface Axis {
  /** The drawn range; every value passed in lies inside it. */
  lo: number;
  hi: number;
  /** Increasing, distinct, inside [lo, hi]. */
  ticks: number[];
  /** One label per tick, all distinct. */
  labels: string[];
}

export interface AxisOptions {
  /** The values the quantity can take (e.g. [0, 100] for a percentage); the axis never leaves them. */
  bounds?: readonly [number, number];
  /** About how many ticks; default 5. */
  count?: number;
}

/** A flat range is widened by this fraction of its value (or by 1 at zero) on each side. */
const FLAT_PAD = 0.1;
/** Other ranges get this fraction of their width on each side before rounding to ticks. */
const MARGIN = 0.05;

const finite = (values: readonly number[]) => values.filter(Number.isFinite);

/** Labels with the fewest decimals that keep ticks `step` apart distinct, thousands grouped. */
function labelsFor(values: readonly number[], step: number): string[] {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const f = new Intl.NumberFormat("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  return values.map((v) => f.format(v === 0 ? 0 : v)); // no "-0"
}

function linearTicks(lo: number, hi: number, count: number): { ticks: number[]; labels: string[] } {
  const t = ticks(lo, hi, count).filter((v) => v >= lo && v <= hi);
  return { ticks: t, labels: labelsFor(t, tickStep(lo, hi, count)) };
}

/** A linear axis over `values` (non-finite ones ignored; none at all gives the bounds or [0, 1]). */
export function linearAxis(values: readonly number[], opts: AxisOptions = {}): Axis {
  const count = opts.count ?? 5;
  const [b0, b1] = opts.bounds ?? [-Infinity, Infinity];
  const v = finite(values);
  let lo = v.length ? Math.min(...v) : Number.isFinite(b0) ? b0 : 0;
  let hi = v.length ? Math.max(...v) : Number.isFinite(b1) ? b1 : 1;
  // a flat range gets room around it; any other a margin, so no point sits on the frame
  const pad = hi - lo > Math.max(Math.abs(lo), Math.abs(hi)) * 1e-12 ? (hi - lo) * MARGIN : lo === 0 ? 1 : Math.abs(lo) * FLAT_PAD;
  [lo, hi] = [lo - pad, hi + pad];
  [lo, hi] = nice(lo, hi, count);
  lo = Math.max(lo, b0);
  hi = Math.min(hi, b1);
  return { lo, hi, ...linearTicks(lo, hi, count) };
}

/**
 * A log axis over the positive `values`: decades (with 2 and 5 between when there are few), or,
 * within less than a decade, linear ticks — so 12,200 to 12,300 gets 12,200, 12,220, … and not
 * five labels that round to the same number.
 */
export function logAxis(values: readonly number[], opts: Pick<AxisOptions, "count"> = {}): Axis {
  const count = opts.count ?? 5;
  const v = finite(values).filter((x) => x > 0);
  let lo = v.length ? Math.min(...v) : 1;
  let hi = v.length ? Math.max(...v) : 10;
  // a margin of 5 % in log space (10 % of the value for a single point) keeps points off the frame
  const margin = hi / lo < 1 + 1e-9 ? 1 + FLAT_PAD : (hi / lo) ** 0.05;
  [lo, hi] = [lo / margin, hi * margin];
  if (hi / lo < 10) return { lo, hi, ...linearTicks(lo, hi, count) };
  const decades: number[] = [];
  for (let k = Math.ceil(Math.log10(lo) - 1e-9); k <= Math.floor(Math.log10(hi) + 1e-9); k++) decades.push(k);
  const mantissas = decades.length <= 2 ? [1, 2, 5] : [1];
  const t = decades
    .flatMap((k) => mantissas.map((m) => Number((m * 10 ** k).toPrecision(1))))
    .concat(mantissas.length === 3 ? mantissas.map((m) => Number((m * 10 ** (decades[0] - 1)).toPrecision(1))) : [])
    .filter((x) => x >= lo && x <= hi)
    .sort((a, b) => a - b);
  const f = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 1 });
  return { lo, hi, ticks: t, labels: t.map((x) => f.format(x)) };
}
