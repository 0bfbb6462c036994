/**
 * Statistics over seeds: mean, sample standard deviation and a Student-t confidence interval
 * of the mean, and paired comparisons (the per-seed differences' interval plus an exact
 * two-sided sign test). The t quantile and binomial CDF come from jstat.
 */
import jStat from "jstat";
import { ConfigError } from "../errors.ts";

/** Two-sided confidence level of every interval reported. */
export const CONFIDENCE = 0.95;

/** A mean with a confidence interval. */
export interface Interval {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1 denominator); 0 for one value. */
  std: number;
  /** mean ± t_{(1+level)/2, n−1} · std / √n; NaN bounds for one value (no spread to estimate). */
  lo: number;
  hi: number;
}

function checkValues(xs: readonly number[], what: string): void {
  if (xs.length === 0) throw new ConfigError(`${what} needs at least one value, got none`);
  const bad = xs.find((x) => !Number.isFinite(x));
  if (bad !== undefined) throw new ConfigError(`${what} needs finite values, got ${bad}`);
}

/** The two-sided Student-t quantile t_{(1+level)/2, dof}. */
export function tQuantile(level: number, dof: number): number {
  if (!(level > 0 && level < 1)) throw new ConfigError(`confidence level must be in (0, 1), got ${level}`);
  if (!(Number.isInteger(dof) && dof >= 1)) throw new ConfigError(`degrees of freedom must be an integer ≥ 1, got ${dof}`);
  return jStat.studentt.inv((1 + level) / 2, dof);
}

/** Mean, std and the t interval of the mean of `xs`. */
export function meanInterval(xs: readonly number[], level = CONFIDENCE): Interval {
  checkValues(xs, "a confidence interval");
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { n, mean, std: 0, lo: Number.NaN, hi: Number.NaN };
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (tQuantile(level, n - 1) * std) / Math.sqrt(n);
  return { n, mean, std, lo: mean - half, hi: mean + half };
}

/**
 * Exact two-sided sign test of H0 "a positive and a negative difference are equally likely":
 * ties are dropped, k = the smaller of the positive and negative counts among the m others,
 * p = min(1, 2 · P[Binomial(m, ½) ≤ k]); 1 when every difference is a tie.
 */
export function signTest(positive: number, negative: number): number {
  for (const [k, v] of [
    ["positive", positive],
    ["negative", negative],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 0)) throw new ConfigError(`sign test: the ${k} count must be an integer ≥ 0, got ${v}`);
  }
  const m = positive + negative;
  if (m === 0) return 1;
  return Math.min(1, 2 * jStat.binomial.cdf(Math.min(positive, negative), m, 0.5));
}

/** The mean paired difference of two methods over shared seeds, with its interval and sign test. */
export interface PairedComparison extends Interval {
  /** Seeds where the first value is higher, lower, equal. */
  positive: number;
  negative: number;
  ties: number;
  /** Two-sided exact sign-test p-value. */
  signP: number;
}

/** Per-pair differences a[i] − b[i] (the same seed in both arms): their t interval and sign test. */
export function pairedComparison(a: readonly number[], b: readonly number[], level = CONFIDENCE): PairedComparison {
  if (a.length !== b.length) throw new ConfigError(`a paired comparison needs as many values on each side, got ${a.length} and ${b.length}`);
  const d = a.map((x, i) => x - b[i]);
  const positive = d.filter((x) => x > 0).length;
  const negative = d.filter((x) => x < 0).length;
  return { ...meanInterval(d, level), positive, negative, ties: d.length - positive - negative, signP: signTest(positive, negative) };
}
