import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { CONSTRUCTIONS, type Construction, type ModelShape, modeSizes, modelShape, tensorCount } from "./constructions.ts";
import { isoLoRA, loraEquivalentRank, paramCount, ranksForBudget } from "./params.ts";

const vitB = modelShape({ dIn: 768, dOut: 768, heads: 12, layers: 12 });

/** The per-construction formulas as written in docs/adapters.md §2 (d, dh, H, L). */
function written(c: Construction, r: number[], d = 768, dh = 64, H = 12, L = 12): number {
  const pr = r.reduce((a, b) => a * b, 1);
  switch (c) {
    case "lora":
      return 3 * L * r[0] * (d + d);
    case "att":
      return 3 * L * (d * r[0] + dh * r[1] + H * r[2] + pr);
    case "qkv":
      return L * (d * r[0] + d * r[1] + 3 * r[2] + pr);
    case "depth":
      return 3 * (d * r[0] + d * r[1] + L * r[2] + pr);
    case "att_qkv":
      return L * (d * r[0] + dh * r[1] + H * r[2] + 3 * r[3] + pr);
    case "att_depth":
      return 3 * (d * r[0] + dh * r[1] + H * r[2] + L * r[3] + pr);
    case "qkv_depth":
      return d * r[0] + d * r[1] + 3 * r[2] + L * r[3] + pr;
    case "att_qkv_depth":
      return d * r[0] + dh * r[1] + H * r[2] + 3 * r[3] + L * r[4] + pr;
  }
}

const MODES: Record<Construction, number> = { lora: 1, att: 3, qkv: 3, depth: 3, att_qkv: 4, att_depth: 4, qkv_depth: 4, att_qkv_depth: 5 };

// docs/adapters.md §2, isorank table (ViT-B / RoBERTa-base)
const ISORANK: Record<number, number[]> = {
  1: [55_296, 30_420, 18_480, 4_647, 10_176, 2_571, 1_552, 860],
  2: [110_592, 61_056, 37_032, 9_312, 20_520, 5_184, 3_118, 1_750],
  4: [221_184, 123_840, 74_640, 18_768, 43_728, 11_040, 6_460, 4_460],
  8: [442_368, 261_504, 153_888, 38_688, 130_464, 32_832, 16_504, 39_640],
  16: [884_736, 633_600, 344_640, 86_592, 949_056, 237_696, 90_352, 1_062_320],
};
const TABLE_ORDER: Construction[] = ["lora", "att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth"];

test("isorank counts reproduce docs/adapters.md §2's table and the written per-construction formulas", () => {
  for (const [r, row] of Object.entries(ISORANK)) {
    TABLE_ORDER.forEach((c, i) => {
      const rank = Number(r);
      assert.equal(paramCount(c, vitB, rank), row[i], `${c} r=${r}`);
      assert.equal(paramCount(c, vitB, rank), written(c, new Array(MODES[c]).fill(rank)), `${c} r=${r}`);
    });
  }
  assert.equal(paramCount("lora", vitB, 8), 442_368);
  assert.equal(paramCount("qkv_depth", vitB, 8), 16_504);
  assert.equal(paramCount("att_qkv_depth", vitB, 8), 39_640);
});

test("mixed ranks follow the written formulas (iso-parameter examples)", () => {
  const examples: [Construction, number[], number][] = [
    ["qkv_depth", [91, 91, 3, 12], 438_045],
    ["att_qkv_depth", [31, 31, 12, 3, 12], 441_241],
    ["depth", [63, 63, 12], 433_620],
    ["qkv", [22, 22, 3], 423_036],
    ["att", [12, 12, 12], 426_816],
  ];
  for (const [c, r, n] of examples) {
    assert.equal(paramCount(c, vitB, r), written(c, r), c);
    assert.equal(paramCount(c, vitB, r), n, c);
  }
});

test("CP counts tensorCount · R · Σ I_n (TensLoRA+ slides: att_qkv_depth R = 8 → 6,872)", () => {
  assert.equal(paramCount("att_qkv_depth", vitB, 8, "cp"), 8 * (768 + 64 + 12 + 3 + 12));
  assert.equal(paramCount("att_qkv_depth", vitB, 8, "cp"), 6_872);
  assert.equal(paramCount("att", vitB, [4, 4, 4], "cp"), 36 * 4 * (768 + 64 + 12));
  assert.throws(() => paramCount("att", vitB, [4, 2, 4], "cp"), ConfigError);
});

test("a projection list of P linears scales LoRA by P and enlarges the qkv mode", () => {
  const s = modelShape({ dIn: 768, dOut: 768, heads: 12, layers: 12, projections: ["query", "key", "value", "output"] });
  assert.equal(paramCount("lora", s, 8), 4 * 12 * 8 * 1536);
  assert.equal(paramCount("qkv_depth", s, 8), 768 * 8 * 2 + 4 * 8 + 12 * 8 + 8 ** 4);
});

test("isoLoRA and loraEquivalentRank invert each other", () => {
  for (const r of [1, 2, 8, 16]) assert.equal(loraEquivalentRank(isoLoRA(vitB, r), vitB), r);
  assert.equal(loraEquivalentRank(39_640, vitB), 39_640 / 55_296);
});

/**
 * The documented rule, by brute force: every rank vector within bounds, filtered and ordered.
 * Only cut: a vector whose count with the remaining ranks at 1 already exceeds the budget has no
 * fitting completion (the count grows with every rank). `floor` > 0 is the slack rule.
 */
function bruteForce(c: Construction, shape: ModelShape, budget: number, cap: boolean, floor = 0): number[] {
  const sizes = modeSizes(c, shape);
  const bounds = sizes.map((s) => (cap ? s : budget));
  type Cand = { count: number; ratio: number; ranks: number[] };
  const all: Cand[] = [];
  const r = sizes.map(() => 1);
  const visit = (k: number): void => {
    if (k === sizes.length) {
      const prod = r.reduce((a, b) => a * b, 1);
      if (r.some((x) => x * x > prod)) return; // r_i ≤ Π_{j≠i} r_j ⇔ r_i² ≤ Π r
      const count = paramCount(c, shape, r);
      if (count <= budget) all.push({ count, ratio: Math.max(...r) / Math.min(...r), ranks: [...r] });
      return;
    }
    for (let x = 1; x <= bounds[k]; x++) {
      r[k] = x;
      if (paramCount(c, shape, r) > budget) break;
      visit(k + 1);
    }
    r[k] = 1;
  };
  visit(0);
  const lex = (a: number[], b: number[]) =>
    a.findIndex((x, i) => x !== b[i]) >= 0 ? a[a.findIndex((x, i) => x !== b[i])] - b[a.findIndex((x, i) => x !== b[i])] : 0;
  const top = Math.max(...all.map((x) => x.count));
  const pool = floor > 0 ? all.filter((x) => x.count >= floor && x.count <= top) : all.filter((x) => x.count === top);
  pool.sort((a, b) => a.ratio - b.ratio || b.count - a.count || lex(a.ranks, b.ranks));
  return pool[0].ranks;
}

test("ranksForBudget equals a brute-force search under the documented rule (small model)", () => {
  const small = modelShape({ dIn: 8, dOut: 6, heads: 2, layers: 3 });
  for (const c of CONSTRUCTIONS.filter((c) => c !== "lora")) {
    const lo = paramCount(c, small, 1);
    const hi = paramCount(c, small, 3);
    for (const budget of [lo, lo + 1, Math.round((lo + hi) / 2), hi, hi + 7, 2 * hi]) {
      for (const cap of [true, false]) {
        const got = ranksForBudget(c, small, budget, { capAtModeSize: cap });
        assert.deepEqual(got.ranks, bruteForce(c, small, budget, cap), `${c} budget ${budget} cap ${cap}`);
        assert.equal(got.count, paramCount(c, small, got.ranks));
        assert.ok(got.count <= budget);
      }
    }
  }
});

test("ranksForBudget with slack: most balanced within (1 − slack)·best count, against brute force", () => {
  const small = modelShape({ dIn: 8, dOut: 6, heads: 2, layers: 3 });
  for (const c of CONSTRUCTIONS.filter((c) => c !== "lora")) {
    const hi = paramCount(c, small, 3);
    for (const budget of [hi - 5, hi + 7, 2 * hi]) {
      for (const cap of [true, false]) {
        const exact = ranksForBudget(c, small, budget, { capAtModeSize: cap });
        const got = ranksForBudget(c, small, budget, { capAtModeSize: cap, slack: 0.1 });
        const floor = Math.ceil(0.9 * exact.count);
        assert.deepEqual(got.ranks, bruteForce(c, small, budget, cap, floor), `${c} budget ${budget} cap ${cap}`);
        assert.ok(got.count >= floor && got.count <= exact.count);
      }
    }
  }
  // ViT-B, qkv_depth at LoRA r = 8: the exact fit is lopsided, 1 % slack is not
  const exact = ranksForBudget("qkv_depth", vitB, 442_368);
  const relaxed = ranksForBudget("qkv_depth", vitB, 442_368, { slack: 0.01 });
  const ratio = (r: number[]) => Math.max(...r) / Math.min(...r);
  assert.ok(ratio(relaxed.ranks) < ratio(exact.ranks));
  assert.ok(relaxed.count >= 0.99 * exact.count);
});

test("ranksForBudget for lora and CP is the largest single rank that fits", () => {
  assert.deepEqual(ranksForBudget("lora", vitB, 442_368).ranks, [8]);
  assert.deepEqual(ranksForBudget("lora", vitB, 442_367).ranks, [7]);
  const cp = ranksForBudget("att_qkv_depth", vitB, 442_368, { factorization: "cp" });
  assert.deepEqual(cp.ranks, [Math.floor(442_368 / 859)]);
  assert.equal(cp.count, cp.ranks[0] * 859);
});

test("ranksForBudget below the smallest adapter names the minimum budget", () => {
  assert.throws(
    () => ranksForBudget("att_qkv_depth", vitB, 859),
    (e: unknown) => e instanceof ConfigError && /860/.test(e.message),
  );
  assert.deepEqual(ranksForBudget("att_qkv_depth", vitB, 860).ranks, [1, 1, 1, 1, 1]);
});

test("ranksForBudget at ViT-B for budgets up to LoRA r = 16: valid, locally maximal, fast", () => {
  const times: string[] = [];
  for (const [cap, slack] of [
    [true, 0],
    [false, 0],
    [true, 0.01],
  ] as const) {
    for (const c of CONSTRUCTIONS) {
      for (const r of [1, 2, 4, 8, 16]) {
        const budget = isoLoRA(vitB, r);
        const t0 = performance.now();
        const got = ranksForBudget(c, vitB, budget, { capAtModeSize: cap, slack });
        const ms = performance.now() - t0;
        times.push(`${cap ? "cap" : "nocap"} slack=${slack} ${c} r=${r}: ${ms.toFixed(1)} ms [${got.ranks.join(",")}] ${got.count}`);
        assert.ok(ms < 5000, `${c} r=${r} cap=${cap} took ${ms} ms`);
        assert.ok(got.count <= budget);
        if (c === "lora" || slack > 0) continue;
        // raising any single rank must break the budget or a constraint
        const sizes = modeSizes(c, vitB);
        got.ranks.forEach((_, i) => {
          const up = [...got.ranks];
          up[i]++;
          const prod = up.reduce((a, b) => a * b, 1);
          const ok = paramCount(c, vitB, up) <= budget && up.every((x, j) => x * x <= prod && (!cap || x <= sizes[j]));
          assert.ok(!ok, `${c} r=${r}: [${up.join(",")}] also fits`);
        });
      }
    }
  }
  if (process.env.TENSLORA_VERBOSE) console.log(times.join("\n"));
});

test("ranksForBudget for CP and tensor-train: the largest count under the budget by their rules, against the formulas", () => {
  const shape = modelShape({ dIn: 32, dOut: 32, heads: 4, layers: 3 });
  for (const c of ["qkv", "att_qkv_depth", "depth"] as const) {
    const sizes = modeSizes(c, shape);
    for (const budget of [500, 2_000, 9_000]) {
      // CP: R = ⌊budget / Σ I_n⌋ per tensor
      const cp = ranksForBudget(c, shape, budget, { factorization: "cp" });
      const perTensor = Math.floor(budget / tensorCount(c, shape));
      assert.deepEqual(cp.ranks, [Math.floor(perTensor / sizes.reduce((a, b) => a + b, 0))]);
      assert.equal(cp.count, paramCount(c, shape, cp.ranks, "cp"));
      // TT: equal bonds r (capped at each unfolding's rank), the largest r that fits
      const tt = ranksForBudget(c, shape, budget, { factorization: "tt" });
      const ttCount = (r: number[]) => tensorCount(c, shape) * sizes.reduce((a, n, k) => a + [1, ...r, 1][k] * n * [1, ...r, 1][k + 1], 0);
      const bound = sizes.slice(0, -1).map((_, k) =>
        Math.min(
          sizes.slice(0, k + 1).reduce((a, b) => a * b, 1),
          sizes.slice(k + 1).reduce((a, b) => a * b, 1),
        ),
      );
      const r = Math.max(...tt.ranks);
      assert.deepEqual(
        tt.ranks,
        bound.map((b) => Math.min(b, r)),
        `${c}: bonds are one r capped per bond`,
      );
      assert.equal(tt.count, ttCount(tt.ranks));
      assert.equal(tt.count, paramCount(c, shape, tt.ranks, "tt"));
      assert.ok(tt.count <= budget, `${c} ${budget}: ${tt.count} over budget`);
      const next = bound.map((b) => Math.min(b, r + 1));
      assert.ok(next.every((v, i) => v === tt.ranks[i]) || ttCount(next) > budget, `${c} ${budget}: r + 1 would still fit`);
    }
  }
});
