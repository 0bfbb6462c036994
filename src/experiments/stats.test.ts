// Intervals and sign tests against values derived by hand: the t quantile's closed forms for 1
// and 2 degrees of freedom and published t-table entries, and exact binomial sums written out.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../errors.ts";
import { meanInterval, pairedComparison, signTest, tQuantile } from "./stats.ts";

const close = (got: number, want: number, tol: number, what: string) => assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

test("t quantiles: closed forms for 1 and 2 degrees of freedom, table values for 4, 9 and 29", () => {
  // dof 1 is the Cauchy distribution: t_p = tan(π (p − ½))
  close(tQuantile(0.95, 1), Math.tan(Math.PI * 0.475), 1e-8, "t(0.975, 1)");
  // dof 2: t_p = (2p − 1) · √(2 / (4p(1 − p)))
  const p = 0.975;
  close(tQuantile(0.95, 2), (2 * p - 1) * Math.sqrt(2 / (4 * p * (1 - p))), 1e-8, "t(0.975, 2)");
  close(tQuantile(0.9, 2), 0.9 * Math.sqrt(2 / (4 * 0.95 * 0.05)), 1e-8, "t(0.95, 2)");
  // standard t-table entries (three decimals)
  close(tQuantile(0.95, 4), 2.776, 5e-4, "t(0.975, 4)");
  close(tQuantile(0.95, 9), 2.262, 5e-4, "t(0.975, 9)");
  close(tQuantile(0.95, 29), 2.045, 5e-4, "t(0.975, 29)");
  close(tQuantile(0.99, 4), 4.604, 5e-4, "t(0.995, 4)");
});

test("mean interval of three and five values, worked by hand", () => {
  // 80, 82, 84: mean 82, std √((4 + 0 + 4) / 2) = 2, half-width t(0.975, 2) · 2 / √3
  const half3 = 4.302652729749 * (2 / Math.sqrt(3));
  const r = meanInterval([80, 84, 82]);
  assert.equal(r.n, 3);
  close(r.mean, 82, 1e-12, "mean");
  close(r.std, 2, 1e-12, "std");
  close(r.lo, 82 - half3, 1e-6, "lo");
  close(r.hi, 82 + half3, 1e-6, "hi");
  // 1..5: mean 3, std √(10 / 4), half-width 2.776 · √2.5 / √5 = 2.776 / √2
  const five = meanInterval([1, 2, 3, 4, 5]);
  close(five.std, Math.sqrt(2.5), 1e-12, "std of 1..5");
  close(five.hi - five.mean, 2.776 / Math.SQRT2, 5e-4, "half-width of 1..5");
  // one value: no spread to estimate, so no interval
  const one = meanInterval([7]);
  assert.equal(one.std, 0);
  assert.ok(Number.isNaN(one.lo) && Number.isNaN(one.hi));
  assert.throws(() => meanInterval([]), ConfigError);
  assert.throws(() => meanInterval([1, Number.NaN]), ConfigError);
});

test("sign test: exact two-sided binomial sums", () => {
  // 5 of 5 positive: 2 · (1/2)^5
  close(signTest(5, 0), 2 / 32, 1e-12, "5 vs 0");
  close(signTest(0, 5), 2 / 32, 1e-12, "0 vs 5");
  // 5 vs 1 of 6: 2 · (C(6,0) + C(6,1)) / 64
  close(signTest(5, 1), (2 * (1 + 6)) / 64, 1e-12, "5 vs 1");
  // 8 vs 2 of 10: 2 · (1 + 10 + 45) / 1024
  close(signTest(8, 2), (2 * 56) / 1024, 1e-12, "8 vs 2");
  // 3 of 3 positive never reaches 5 %: 2 / 8
  close(signTest(3, 0), 0.25, 1e-12, "3 vs 0");
  // balanced and empty cases cap at 1
  assert.equal(signTest(3, 3), 1);
  assert.equal(signTest(0, 0), 1);
  assert.throws(() => signTest(-1, 2), ConfigError);
});

test("paired comparison: per-seed differences, ties dropped from the sign test", () => {
  // differences 2, 1, 0, 3, 4 → mean 2, std √2.5; 4 positive, 1 tie → sign test of 4 vs 0 = 2/16
  const r = pairedComparison([82, 81, 80, 83, 84], [80, 80, 80, 80, 80]);
  assert.deepEqual([r.positive, r.negative, r.ties], [4, 0, 1]);
  close(r.mean, 2, 1e-12, "mean difference");
  close(r.std, Math.sqrt(2.5), 1e-12, "std of the differences");
  close(r.hi - r.mean, 2.776 / Math.SQRT2, 5e-4, "half-width");
  close(r.signP, 2 / 16, 1e-12, "sign test");
  assert.throws(() => pairedComparison([1, 2], [1]), ConfigError);
});
