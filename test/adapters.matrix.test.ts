/**
 * The adapter contract as a matrix, at the adapter level on linear-site lists of a decoder block
 * (q [d → H·dh], k/v [d → H_kv·dh], o [H·dh → d], gate/up [d → 2d], down [2d → d], 2 blocks):
 * every construction × factorisation (Tucker, CP, tensor-train, partial Tucker) × target set (q,k,v; all-linear)
 * × GQA ratio H/H_kv (1, 2, 3, MQA) × GQA mode (K/V in Q's stack, or `separate` where H_kv < H) is
 * one case, checked for
 *   1. merge ≡ unmerged: x·W'ᵀ with W' = merge(W) equals x·Wᵀ + the hook's update in ONNX Runtime
 *      (1e-5 relative), and merge's ΔW equals the independent fold of test/helpers.ts;
 *   2. parameter count = numbers in the tensors = Σ over groups of docs/adapters.md §5's formula, with
 *      the groups (members, sides, heads, projections, layers, fallback) written out here;
 *   3. every tensor's gradient against central differences of the same loss on the host (float64,
 *      test/probe-loss.ts), with the slices R[p,l] built all at once and one by one;
 *   4. zero update at initialisation (merge changes no weight), and save → load restores every
 *      tensor bit for bit with the same groups and ranks.
 * A combination the design refuses is a case too: its refusal message is asserted. LoRA has no
 * tensor to factorise, so its cases under the other factorisations are skipped with that reason. Then two
 * real decoders (tiny Llama, 4 query / 2 KV heads; tiny Qwen2, 4 / 1) with att_qkv_depth on
 * all-linear: merged logits ≡ unmerged.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type AdapterSet, adapterParamCount } from "../src/adapters/adapter-set.ts";
import type { AdapterOptions } from "../src/adapters/config.ts";
import { CONSTRUCTIONS, CONSTRUCTION_SPECS, type Construction, modeNames } from "../src/adapters/constructions.ts";
import type { Factorization } from "../src/adapters/factorizations/index.ts";
import { loadAdapter, saveAdapter } from "../src/adapters/format.ts";
import { type GqaMode, withoutHeads } from "../src/adapters/groups.ts";
import { mergeAdapter } from "../src/adapters/merge.ts";
import type { LinearSite } from "../src/nn/sites.ts";
import { ConfigError } from "../src/errors.ts";
import * as b from "../src/ir/builder.ts";
import { createAdapter } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import type { WeightMap } from "../src/nn/params.ts";
import { Rng } from "../src/tensor/random.ts";
import { designCount, matrixModeNames, maxRelDiff, modelRunner, naiveDeltaMap, outF32, planSet, randomizeAdapter, sameBits, tempDir } from "./helpers.ts";
import { type ProbeRun, checkProbeGradients, runProbeGraph } from "./probe-loss.ts";

const D = 12;
const LAYERS = 2;
const TOKENS = 3;

interface Ratio {
  id: string;
  heads: number;
  kvHeads: number;
  dh: number;
  /** The design's refusal, when it refuses this model. */
  refused?: RegExp;
}

/** d = H·dh, so o is square and joins q's group. */
const RATIOS: Ratio[] = [
  { id: "H/H_kv 1 (H4)", heads: 4, kvHeads: 4, dh: 3 },
  { id: "H/H_kv 2 (H4/2)", heads: 4, kvHeads: 2, dh: 3 },
  { id: "H/H_kv 3 (H6/2)", heads: 6, kvHeads: 2, dh: 2 },
  { id: "MQA (H4/1)", heads: 4, kvHeads: 1, dh: 3 },
  { id: "H4/3 (heads do not divide)", heads: 4, kvHeads: 3, dh: 3, refused: /4 query heads cannot share 3 key\/value heads .*fix num_key_value_heads/ },
];

const TARGETS = { "q,k,v": ["q_proj", "k_proj", "v_proj"], "all-linear": "all-linear" } as const;
type TargetSet = keyof typeof TARGETS;

const FACTORIZATIONS: Factorization[] = ["tucker", "cp", "tt", "partial_tucker"];

function decoderSites(k: Ratio): LinearSite[] {
  const { heads, kvHeads, dh } = k;
  const sites: LinearSite[] = [];
  for (let l = 0; l < LAYERS; l++) {
    const at = (name: string) => `model.layers.${l}.self_attn.${name}`;
    sites.push({ path: at("q_proj"), name: "q_proj", layer: l, inFeatures: D, outFeatures: heads * dh, heads: { side: "out", count: heads, dim: dh } });
    for (const name of ["k_proj", "v_proj"]) {
      const queryHeads = kvHeads < heads ? { queryHeads: heads } : {};
      sites.push({ path: at(name), name, layer: l, inFeatures: D, outFeatures: kvHeads * dh, heads: { side: "out", count: kvHeads, dim: dh, ...queryHeads } });
    }
    sites.push({ path: at("o_proj"), name: "o_proj", layer: l, inFeatures: heads * dh, outFeatures: D, heads: { side: "in", count: heads, dim: dh } });
    for (const name of ["gate_proj", "up_proj"]) sites.push({ path: `model.layers.${l}.mlp.${name}`, name, layer: l, inFeatures: D, outFeatures: 2 * D });
    sites.push({ path: `model.layers.${l}.mlp.down_proj`, name: "down_proj", layer: l, inFeatures: 2 * D, outFeatures: D });
  }
  return sites;
}

/**
 * The shape groups the design promises, written out: GQA "mean" widens K/V to Q's H·dh, so Q, K,
 * V (and the square O) stack in one group whose heads are the query heads, and "separate" leaves
 * K/V [d → H_kv·dh] a group of their own whose heads are the K/V heads; the MLP's gate/up and
 * down form groups without heads, where an att construction runs its counterpart without heads.
 */
function expectedGroups(c: Construction, k: Ratio, targets: TargetSet, gqa: GqaMode) {
  const o = targets === "q,k,v" ? [] : ["o_proj"];
  const group = (names: string[], heads: number) => ({ name: names.join("+"), construction: c, dIn: D, dOut: heads * k.dh, heads, projections: names.length });
  // `separate` with H_kv < H: Q (and the square O) in one group, K/V in their own with H_kv heads
  const groups =
    gqa === "separate" && k.kvHeads < k.heads
      ? [group(["q_proj", ...o], k.heads), group(["k_proj", "v_proj"], k.kvHeads)]
      : [group(["q_proj", "k_proj", "v_proj", ...o], k.heads)];
  if (targets === "all-linear") {
    groups.push({ name: "gate_proj+up_proj", construction: withoutHeads(c), dIn: D, dOut: 2 * D, heads: 1, projections: 2 });
    groups.push({ name: "down_proj", construction: withoutHeads(c), dIn: 2 * D, dOut: D, heads: 1, projections: 1 });
  }
  return groups;
}

/** Distinct ranks per mode, so that a swapped mode shows. */
const RANK: Record<string, number> = { in: 4, out: 3, dh: 2, heads: 3, qkv: 2, depth: 2 };

function ranksFor(c: Construction, f: Factorization): number | number[] {
  if (c === "lora") return 2;
  if (f === "cp") return 3;
  const names = modeNames(c);
  if (f === "tt") return [3, 2, 2, 2].slice(0, names.length - 1);
  // partial Tucker factorises the matrix modes only; qkv and depth stay whole
  return (f === "partial_tucker" ? matrixModeNames(c) : names).map((m) => RANK[m]);
}

interface Case {
  id: string;
  ratio: Ratio;
  gqa: GqaMode;
  targets: TargetSet;
  construction: Construction;
  factorization: Factorization;
  sites: LinearSite[];
  /** The planned adapter as initialised, and randomised; absent where the design refuses (`error`) or the case does not apply (`skip`). */
  init?: AdapterSet;
  set?: AdapterSet;
  error?: Error;
  skip?: string;
}

const cases: Case[] = [];
let seed = 1;
for (const ratio of RATIOS) {
  const sites = decoderSites(ratio);
  const modes: GqaMode[] = ratio.kvHeads < ratio.heads ? ["mean", "separate"] : ["mean"];
  const grid = (Object.keys(TARGETS) as TargetSet[]).flatMap((targets) =>
    modes.flatMap((gqa) => CONSTRUCTIONS.flatMap((construction) => FACTORIZATIONS.map((factorization) => ({ targets, gqa, construction, factorization })))),
  );
  for (const { targets, gqa, construction, factorization } of grid) {
    const id = `${ratio.id} · ${gqa} · ${targets} · ${construction} · ${factorization}`;
    const c: Case = { id, ratio, gqa, targets, construction, factorization, sites };
    cases.push(c);
    if (construction === "lora" && factorization !== "tucker") {
      c.skip = "LoRA has no tensor to factorise: its A, B pair is the same under every factorisation";
      continue;
    }
    const opts: AdapterOptions = {
      construction,
      ranks: ranksFor(construction, factorization),
      factorization,
      targetModules: TARGETS[targets],
      gqa,
      scaling: 1.3,
    };
    try {
      c.init = planSet(sites, opts, seed);
      c.set = randomizeAdapter(c.init, 100 + seed, 0.5);
    } catch (e) {
      c.error = e as Error;
    }
    seed++;
  }
}

const rng = new Rng(7);
const xs = new Map([D, 2 * D].map((w) => [w, rng.normalArray(TOKENS * w)]));

interface CaseRun extends ProbeRun {
  weights: WeightMap;
}

/**
 * One case's graph: per adapted site x·Wᵀ + hook (unmerged) and x·W'ᵀ with W' = merge(W)
 * (merged), beside the probe loss's gradients.
 */
async function runCase(c: Case): Promise<CaseRun> {
  const set = c.set!;
  const r = new Rng(c.id.length * 7919 + set.tensors.size);
  const weights: WeightMap = new Map(
    c.sites.map((s) => [`${s.path}.weight`, { shape: [s.outFeatures, s.inFeatures], data: Float32Array.from(r.normalArray(s.outFeatures * s.inFeatures)) }]),
  );
  const merged = mergeAdapter(weights, set);
  const run = await runProbeGraph(set, xs, TOKENS, r, (g, x, site, update) => {
    const w = (m: WeightMap, name: string) =>
      b.transpose(g.initializer(`${name}:${site.path}`, m.get(`${site.path}.weight`)!.data, [site.outFeatures, site.inFeatures]), [1, 0]);
    g.output(`unmerged:${site.path}`, b.add(b.matmul(x, w(weights, "W")), update));
    g.output(`merged:${site.path}`, b.matmul(x, w(merged, "W'")));
  });
  return { ...run, weights };
}

test(`adapter matrix: ${cases.length} cases (construction × factorisation × target set × GQA ratio × GQA mode)`, async (t) => {
  const t0 = performance.now();
  let worstMerge = 0;
  let worstGrad = 0;
  const counts = { ran: 0, refused: 0, skipped: 0 };
  for (const c of cases) {
    await t.test(c.id, { skip: c.skip }, async () => {
      if (c.skip) return;
      if (c.ratio.refused) {
        counts.refused++;
        assert.ok(c.error instanceof ConfigError && c.ratio.refused.test(c.error.message) && !c.error.message.includes("\n"), `refusal: ${c.error?.message}`);
        return;
      }
      if (c.error) throw c.error;
      counts.ran++;
      const set = c.set!;
      const run = await runCase(c);
      const { weights, out } = run;
      // 2. parameter count: the tensors, the library's count and the formula over the groups written out above
      const numbers = [...set.tensors.values()].reduce((a, w) => a + w.data.length, 0);
      assert.equal(adapterParamCount(set), numbers);
      if (c.construction === "lora") {
        const adapted = c.sites.filter((s) => c.targets === "all-linear" || TARGETS["q,k,v"].includes(s.name as "q_proj"));
        assert.equal(
          numbers,
          adapted.reduce((a, s) => a + 2 * (s.inFeatures + s.outFeatures), 0),
          "LoRA: r·(in + out) per site",
        );
      } else {
        const want = expectedGroups(c.construction, c.ratio, c.targets, c.gqa);
        assert.deepEqual(
          set.groups.map((gr) => gr.name),
          want.map((w) => w.name),
        );
        let formula = 0;
        for (const [i, w] of want.entries()) {
          const gr = set.groups[i];
          const att = CONSTRUCTION_SPECS[w.construction].hasAtt;
          assert.deepEqual(
            [gr.construction, gr.shape.dIn, gr.shape.dOut, gr.shape.projections.length, gr.shape.layers, att ? gr.shape.heads : 1],
            [w.construction, w.dIn, w.dOut, w.projections, LAYERS, att ? w.heads : 1],
            `group ${w.name}`,
          );
          formula += designCount(w.construction, gr.ranks, w.dIn, w.dOut, w.heads, LAYERS, w.projections, c.factorization);
        }
        assert.equal(numbers, formula, "tensors vs the formula of docs/adapters.md §5");
      }
      // 1. merge ≡ unmerged, and merge's ΔW is the independent fold
      const merged = mergeAdapter(weights, set);
      for (const [key, fold] of naiveDeltaMap(set)) {
        const w0 = weights.get(key)!.data;
        const delta = Float64Array.from(merged.get(key)!.data, (v, i) => v - w0[i]);
        assert.ok(maxRelDiff(delta, fold) < 1e-4, `${key}: merged ΔW vs fold ${maxRelDiff(delta, fold)}`);
        const path = key.slice(0, -".weight".length);
        const d = maxRelDiff(out[`merged:${path}`].data as Float32Array, out[`unmerged:${path}`].data as Float32Array);
        worstMerge = Math.max(worstMerge, d);
        assert.ok(d < 1e-5, `${path}: merged vs unmerged forward ${d}`);
      }
      // 3. gradients vs central differences of the host loss, one random direction per tensor, with
      // the slices built all at once and one by one (as large groups build them)
      worstGrad = Math.max(worstGrad, checkProbeGradients(set, run, xs, TOKENS, new Rng(seed + c.id.length), c.id));
      if (c.construction !== "lora") {
        const oneByOne = await runProbeGraph(set, xs, TOKENS, new Rng(seed), undefined, { rematSliceBytes: 0 });
        worstGrad = Math.max(worstGrad, checkProbeGradients(set, oneByOne, xs, TOKENS, new Rng(seed + c.id.length), `${c.id}, one by one`));
      }
      // 4. zero update at initialisation; save → load bit for bit
      const atInit = mergeAdapter(weights, c.init!);
      for (const [k, w] of weights) assert.ok(sameBits(atInit.get(k)!.data, w.data), `merging the initial adapter changed ${k}`);
      const ctx = { sites: c.sites, heads: c.ratio.heads, layers: LAYERS, hidden: D, headShapes: new Map<string, number[]>() };
      const { dir, cleanup } = tempDir("matrix");
      try {
        saveAdapter(dir, set, ctx);
        const loaded = loadAdapter(dir, ctx).set;
        assert.deepEqual(
          loaded.groups.map((gr) => [gr.name, gr.construction, gr.ranks]),
          set.groups.map((gr) => [gr.name, gr.construction, gr.ranks]),
        );
        assert.deepEqual([...loaded.tensors.keys()].sort(), [...set.tensors.keys()].sort());
        for (const [k, w] of set.tensors) assert.ok(sameBits(loaded.tensors.get(k)!.data, w.data), `${k} did not round-trip bit for bit`);
      } finally {
        cleanup();
      }
    });
    if (c.skip) counts.skipped++;
  }
  t.diagnostic(
    `${counts.ran} ran, ${counts.refused} refused as designed, ${counts.skipped} skipped (LoRA × CP/TT/partial Tucker) in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `worst merged vs unmerged ${worstMerge.toExponential(2)}, worst gradient error ${worstGrad.toExponential(2)} (relative to ‖grad‖)`,
  );
  assert.equal(counts.ran + counts.refused + counts.skipped, cases.length);
});

const LM_FIXTURES = "test/fixtures/hf-tiny-lm";

for (const [name, heads] of [
  ["llama", "4 query / 2 KV heads"],
  ["qwen2", "4 query / 1 KV head"],
] as const) {
  test(`${name} (${heads}): att_qkv_depth on all-linear, merged logits equal unmerged`, async () => {
    const model = loadModel(join(LM_FIXTURES, name));
    const cfg = model.config as { vocabSize: number };
    const ids = new Rng(3).permutation(cfg.vocabSize).slice(0, 10);
    const hf = {
      input_ids: { dtype: "int64" as const, shape: [2, 5], data: BigInt64Array.from(ids, (i) => BigInt(i)) },
      attention_mask: { dtype: "int64" as const, shape: [2, 5], data: new BigInt64Array(10).fill(1n) },
    };
    const { set } = createAdapter(model, { construction: "att_qkv_depth", ranks: 2, targetModules: "all-linear", seed: 5 });
    assert.ok(
      set.groups.some((gr) => gr.construction === "att_qkv_depth" && gr.members.some((m) => m.kv)),
      "K/V share the query heads' stack",
    );
    assert.ok(
      set.groups.some((gr) => gr.construction === "qkv_depth"),
      "the MLP groups run the counterpart without heads",
    );
    const rset = randomizeAdapter(set, 11, 0.2);
    const unmerged = await modelRunner({ model, hf, adapter: rset, trainable: "none" });
    const merged = await modelRunner({ model: { ...model, weights: mergeAdapter(model.weights, rset) }, hf, trainable: "none" });
    const plain = await modelRunner({ model, hf, trainable: "none" });
    try {
      const a = outF32(await unmerged.run(hf), "logits");
      const m = outF32(await merged.run(hf), "logits");
      const p = outF32(await plain.run(hf), "logits");
      assert.ok(maxRelDiff(a, p) > 1e-3, "the update changes the logits");
      const d = maxRelDiff(m, a);
      assert.ok(d < 1e-5, `merged vs unmerged logits ${d} (relative)`);
    } finally {
      for (const r of [unmerged, merged, plain]) r.dispose();
    }
  });
}
