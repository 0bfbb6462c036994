// Axis ranges and ticks over many data sets, single points and tiny ranges included: ticks are
// distinct, increasing, inside the range, labelled distinctly, and the range holds the data and
// stays inside the quantity's bounds.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Axis, linearAxis, logAxis } from "./axis.ts";

function assertAxis(a: Axis, values: readonly number[], what: string): void {
  assert.ok(a.lo < a.hi, `${what}: empty range [${a.lo}, ${a.hi}]`);
  assert.ok(a.ticks.length >= 2, `${what}: ${a.ticks.length} ticks (${a.labels})`);
  for (let i = 1; i < a.ticks.length; i++) assert.ok(a.ticks[i] > a.ticks[i - 1], `${what}: ticks not increasing: ${a.ticks}`);
  assert.ok(a.ticks[0] >= a.lo && a.ticks.at(-1)! <= a.hi, `${what}: ticks ${a.ticks} outside [${a.lo}, ${a.hi}]`);
  assert.equal(new Set(a.labels).size, a.labels.length, `${what}: repeated tick labels ${a.labels.join(" ")}`);
  for (const v of values) assert.ok(v >= a.lo && v <= a.hi, `${what}: ${v} outside [${a.lo}, ${a.hi}]`);
}

/** A seeded generator (mulberry32), so a failure names a reproducible case. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

test("the issue's cases: 12,2xx parameters on a log axis and a single accuracy of one run", () => {
  const params = [12_210, 12_244, 12_288, 12_300];
  const x = logAxis(params);
  assertAxis(x, params, "log 12,210–12,300");
  assert.ok(x.ticks.length >= 3);
  const one = linearAxis([87.5], { bounds: [0, 100] });
  assertAxis(one, [87.5], "one accuracy");
  assert.ok(one.hi - one.lo <= 30, `one point spans [${one.lo}, ${one.hi}]`);
  assert.deepEqual([linearAxis([100], { bounds: [0, 100] }).hi, linearAxis([0], { bounds: [0, 100] }).lo], [100, 0], "clipped to the domain");
  assertAxis(linearAxis([100], { bounds: [0, 100] }), [100], "100 %");
  assertAxis(linearAxis([0], { bounds: [0, 100] }), [0], "0 %");
  assertAxis(logAxis([12_200]), [12_200], "one parameter count");
  assert.deepEqual(logAxis([1_000, 1_000_000]).labels, ["1,000", "10,000", "100,000", "1,000,000"]);
});

test("random data sets, flat and tiny ranges, on linear and log axes: distinct increasing ticks and labels", () => {
  const r = rng(26);
  let cases = 0;
  for (let i = 0; i < 3000; i++) {
    const centre = (r() - 0.5) * 10 ** Math.floor(r() * 16 - 6);
    const spread = [0, 1e-13, 1e-9, 1e-6, 1e-3, 1, 1e3][i % 7] * Math.abs(centre || 1) * r();
    const n = 1 + Math.floor(r() * 5);
    const values = Array.from({ length: n }, () => centre + spread * (r() - 0.5));
    const what = `linear case ${i}: ${values.join(", ")}`;
    assertAxis(linearAxis(values), values, what);
    const pct = values.map((v) => Math.min(100, Math.max(0, 50 + v / (Math.abs(centre) || 1))));
    const a = linearAxis(pct, { bounds: [0, 100] });
    assertAxis(a, pct, `percent ${what}`);
    assert.ok(a.lo >= 0 && a.hi <= 100, `percent ${what}: [${a.lo}, ${a.hi}]`);
    const positive = values.map((v) => Math.abs(v) || 1);
    assertAxis(logAxis(positive), positive, `log ${what}`);
    cases += 3;
  }
  assert.equal(cases, 9000);
});

test("no values (every run still without a point) gives the bounds or [0, 1]; non-finite values are ignored", () => {
  assert.deepEqual([linearAxis([], { bounds: [0, 100] }).lo, linearAxis([], { bounds: [0, 100] }).hi], [0, 100]);
  assertAxis(linearAxis([]), [], "none");
  assertAxis(linearAxis([Number.NaN, 3, Number.POSITIVE_INFINITY]), [3], "NaN and Inf");
});
