// Claims cells against hand computations: Holm's adjustment written out, the t quantile's closed
// form for 2 degrees of freedom at the Bonferroni level, and seed counts from t-table values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ArmValues, CLAIMS, claimCells, holm, seedsForHalfWidth, seedsToExclude } from "./claims-stats.ts";

const close = (got: number, want: number, tol: number, what: string) => assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

test("Holm's step-down adjustment, in the input order", () => {
  // sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.06
  assert.deepEqual(
    holm([0.01, 0.04, 0.03, 0.005]).map((p) => +p.toFixed(10)),
    [0.03, 0.06, 0.06, 0.02],
  );
  assert.deepEqual(holm([0.5, 0.9]), [1, 1], "capped at 1 (0.5 · 2), then monotone");
});

test("seed counts: the least n whose 95 % half-width t(n−1)·sd/√n is within the target", () => {
  // sd 2, target 1: n = 18 gives t(0.975, 17) = 2.110 → 0.995; n = 17 gives 2.120 · 2 / √17 = 1.028
  assert.equal(seedsForHalfWidth(2, 1, 0.95), 18);
  assert.equal(seedsToExclude(1, 2, 0.95), 18);
  assert.equal(seedsToExclude(-1, 2, 0.95), 18, "either sign");
  assert.equal(seedsToExclude(0, 2, 0.95), Number.POSITIVE_INFINITY);
  // (1.96 · 2 / 0.01)² ≈ 154,000 seeds: past the search, like a mean of 0
  assert.equal(seedsToExclude(0.01, 2, 0.95), Number.POSITIVE_INFINITY);
});

test("claim cells: Bonferroni intervals over the cells tested, verdicts by sign, missing arms not tested", () => {
  const seeds = [0, 1, 2];
  const arm = (arm: string, xs: number[]): ArmValues => ({ task: "t", budget: "r4", arm, bySeed: new Map(seeds.map((s, i) => [s, xs[i]])) });
  const values = [
    arm("lora", [80, 81, 82]),
    arm("qkv_depth", [81, 83, 85]), // differences 1, 2, 3
    arm("att_qkv_depth", [70, 70.5, 71]), // differences −10, −10.5, −11
  ];
  const cells = claimCells(values, ["t"], ["r4"]);
  assert.equal(cells.length, CLAIMS.length);
  const level = 1 - 0.05 / 2; // two cells have their arms; att_least lacks qkv, depth and att
  const p = (1 + level) / 2;
  const t2 = (2 * p - 1) * Math.sqrt(2 / (4 * p * (1 - p)));
  const q = cells.find((c) => c.claim === "qkv_depth")!;
  close(q.comparison!.mean, 2, 1e-12, "mean");
  close(q.comparison!.hi - 2, t2 / Math.sqrt(3), 1e-9, "half-width at the corrected level");
  // t(0.99375, 2) ≈ 8.86, so ±5.1 around 2: not decided; would be with more seeds
  assert.equal(q.verdict, "not decided");
  assert.ok(q.seedsToDecide > 3 && Number.isFinite(q.seedsToDecide));
  const a = cells.find((c) => c.claim === "att_qkv_depth")!;
  assert.equal(a.verdict, "contradicted");
  const least = cells.find((c) => c.claim === "att_least")!;
  assert.equal(least.seeds, 0);
  assert.equal(least.verdict, "not decided");
});
