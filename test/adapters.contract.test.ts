/**
 * The adapter contract suite, one set of checks every construction must pass: rows of (model, construction, factorisation, head
 * layout, options) × the same generic checks —
 *   1. parameter count = numbers in its tensors = `paramCount` = the formula of docs/adapters.md §5;
 *   2. only adapter and head parameters are graph inputs, frozen weights are initializers;
 *   3. zero update at initialisation: logits equal the base model's, merge changes no weight;
 *   4. with random non-zero parameters: merged forward ≡ unmerged (1e-5), unmerge restores the
 *      weights up to float rounding;
 *   5. save → load restores every tensor bit for bit and gives identical logits;
 *   6. the gradient wrt the core and every factor (LoRA: A and B) matches central differences of
 *      the compiled loss along random directions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type AdapterSet, adapterParamCount, groupParameterShapes } from "../src/adapters/adapter-set.ts";
import { tensorKey } from "../src/adapters/tensor-graph.ts";
import type { AdapterGroup, AdapterOptions } from "../src/adapters/config.ts";
import { CONSTRUCTION_SPECS, type Construction, modeNames, tensorCount, tensorModes } from "../src/adapters/constructions.ts";
import { FACTORIZATIONS } from "../src/adapters/factorizations/index.ts";
import { loadAdapter, saveAdapter } from "../src/adapters/format.ts";
import { mergeAdapter, unmergeAdapter } from "../src/adapters/merge.ts";
import { paramCount } from "../src/adapters/params.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { type LoadedModel, loadModel } from "../src/models/load.ts";
import type { WeightMap } from "../src/nn/params.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { Rng } from "../src/tensor/random.ts";
import {
  FIXTURES,
  type ModelRunner,
  designCount,
  dot,
  hfInputs,
  labelsOf,
  maxAbsDiff,
  maxAbs,
  modelRunner,
  naiveDeltaMap,
  outF32,
  randomizeAdapter,
  readGolden,
  sameBits,
  tempDir,
  matrixModeNames,
} from "./helpers.ts";

type ModelName = "vit" | "roberta";

interface Row {
  model: ModelName;
  opts: AdapterOptions & { init?: "orthogonal" | "normal" | "kaiming_uniform" };
}

/** Distinct ranks per mode so that a swapped mode shows. */
const RANK: Record<string, number> = { in: 4, out: 3, dh: 3, heads: 2, qkv: 2, depth: 3 };
const tucker = (c: Construction) => modeNames(c).map((m) => RANK[m]);
/** Partial Tucker's ranks: the matrix modes only (qkv and depth stay whole). */
const partial = (c: Construction) => matrixModeNames(c).map((m) => RANK[m]);

const TENSORS: Construction[] = ["att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth"];
const ATT = TENSORS.filter((c) => CONSTRUCTION_SPECS[c].hasAtt);

const ROWS: Row[] = [
  { model: "vit", opts: { construction: "lora", ranks: 4, loraAlpha: 8 } },
  ...TENSORS.map((c): Row => ({ model: "vit", opts: { construction: c, ranks: tucker(c), scaling: 2 } })),
  ...ATT.map((c): Row => ({ model: "vit", opts: { construction: c, ranks: tucker(c), headLayout: "interleaved" } })),
  ...TENSORS.map((c): Row => ({ model: "vit", opts: { construction: c, ranks: 3, factorization: "cp", scaling: 1.5 } })),
  { model: "vit", opts: { construction: "att_qkv_depth", ranks: 3, factorization: "cp", headLayout: "interleaved" } },
  { model: "vit", opts: { construction: "qkv_depth", ranks: tucker("qkv_depth"), init: "normal" } },
  { model: "vit", opts: { construction: "att", ranks: tucker("att"), init: "kaiming_uniform" } },
  // other target sets: the qkv mode has the size of the target list
  { model: "vit", opts: { construction: "qkv_depth", ranks: tucker("qkv_depth"), targetModules: ["query", "value"] } },
  { model: "vit", opts: { construction: "att_qkv", ranks: tucker("att_qkv"), targetModules: ["query", "key", "value", "attention.output.dense"] } },
  // tensor-train: distinct bond ranks (the first N − 1 of 4, 3, 2, 3)
  ...TENSORS.map(
    (c): Row => ({ model: "vit", opts: { construction: c, ranks: [4, 3, 2, 3].slice(0, modeNames(c).length - 1), factorization: "tt", scaling: 1.5 } }),
  ),
  // partial Tucker: a free core slice per projection and layer between shared factors
  ...TENSORS.map((c): Row => ({ model: "vit", opts: { construction: c, ranks: partial(c), factorization: "partial_tucker", scaling: 1.5 } })),
  { model: "vit", opts: { construction: "att_qkv", ranks: partial("att_qkv"), factorization: "partial_tucker", headLayout: "interleaved", init: "normal" } },
  // every linear layer: shape groups (q/k/v/o, intermediate, output), att falling back on the MLP groups
  { model: "vit", opts: { construction: "lora", ranks: 3, targetModules: "all-linear" } },
  { model: "vit", opts: { construction: "qkv_depth", ranks: 3, targetModules: "all-linear", scaling: 2 } },
  { model: "vit", opts: { construction: "att_qkv_depth", ranks: 2, factorization: "tt", targetModules: "all-linear" } },
  { model: "vit", opts: { construction: "att_depth", ranks: 2, factorization: "cp", targetModules: "all-linear", headLayout: "interleaved" } },
  // mixed shapes from a name list, and PEFT's layers_to_transform
  { model: "vit", opts: { construction: "qkv", ranks: [4, 3, 2], targetModules: ["query", "intermediate.dense"] } },
  { model: "vit", opts: { construction: "att_depth", ranks: [4, 3, 2, 2], targetModules: ["query", "value"], layersToTransform: [1, 3] } },
  { model: "roberta", opts: { construction: "lora", ranks: 2, loraAlpha: 3, useRslora: true } },
  { model: "roberta", opts: { construction: "att_qkv_depth", ranks: [3, 2, 2, 2], factorization: "tt", targetModules: "all-linear" } },
  { model: "roberta", opts: { construction: "att_qkv_depth", ranks: tucker("att_qkv_depth"), headLayout: "interleaved", scaling: 2 } },
  { model: "roberta", opts: { construction: "qkv", ranks: 2, factorization: "cp" } },
  { model: "roberta", opts: { construction: "depth", ranks: tucker("depth") } },
  { model: "roberta", opts: { construction: "att_qkv_depth", ranks: 2, factorization: "partial_tucker", targetModules: "all-linear" } },
];

interface Setup {
  model: LoadedModel;
  hf: Record<string, HostTensor>;
  labels: HostTensor;
  /** The base model with every weight fed as an input: base and merged logits from one session. */
  base: ModelRunner;
  baseLogits: Float32Array;
}

const setups = new Map<ModelName, Promise<Setup>>();
function setup(name: ModelName): Promise<Setup> {
  let s = setups.get(name);
  if (!s) {
    s = (async () => {
      const model = loadModel(join(FIXTURES, name));
      const gold = readGolden(`${name}_base_golden`);
      const hf = hfInputs(gold);
      const base = await modelRunner({ model, hf, trainable: "all" });
      const baseLogits = outF32(await base.run(hf), "logits");
      return { model, hf, labels: labelsOf(gold), base, baseLogits };
    })();
    setups.set(name, s);
  }
  return s;
}

/** The tensors that are zero at initialisation, rescaled so that max |ΔW| = `target`. */
function withUpdateSize(set: AdapterSet, weights: WeightMap, target: number): AdapterSet {
  const merged = mergeAdapter(weights, set);
  let max = 0;
  for (const site of set.groups.flatMap((g) => g.grid.flat())) {
    const k = `${site.path}.weight`;
    max = Math.max(max, maxAbsDiff(merged.get(k)!.data, weights.get(k)!.data));
  }
  const f = target / max;
  const tensors: WeightMap = new Map();
  for (const [k, t] of set.tensors) {
    const fz = set.config.factorization;
    const zeroAtInit =
      k.endsWith(".lora_B.weight") || k.endsWith(".core") || (fz === "cp" && k.endsWith(".factors.0")) || (fz === "tt" && k.endsWith(".cores.1"));
    tensors.set(k, zeroAtInit ? { shape: t.shape, data: t.data.map((v) => v * f) } : t);
  }
  return { ...set, tensors };
}

function rowName(r: Row): string {
  const o = r.opts;
  const parts = [o.construction, o.factorization ?? "tucker", o.headLayout ?? "head_major", `ranks ${JSON.stringify(o.ranks)}`];
  if (o.init) parts.push(`init ${o.init}`);
  if (o.targetModules) parts.push(`targets ${typeof o.targetModules === "string" ? o.targetModules : o.targetModules.join("+")}`);
  return `${r.model}: ${parts.join(", ")}`;
}

let worstFd = 0;
/** Finite-difference step along a unit direction. */
const H = 0.05;
let worstMerge = 0;

for (const [ri, row] of ROWS.entries()) {
  test(`contract: ${rowName(row)}`, async () => {
    const { model, hf, labels, base, baseLogits } = await setup(row.model);
    const ctx = modelContext(model);
    const { set } = createAdapter(model, { ...row.opts, seed: ri });
    const cfg = set.config;
    const headKeys = model.family.headParameters(model.config);

    // 1. parameter count
    const numbers = [...set.tensors.values()].reduce((a, t) => a + t.data.length, 0);
    assert.equal(numbers, adapterParamCount(set));
    const sum = (f: (g: AdapterGroup) => number) => set.groups.reduce((n, g) => n + f(g), 0);
    assert.equal(
      numbers,
      sum((g) => paramCount(g.construction, g.shape, g.ranks, cfg.factorization)),
    );
    assert.equal(
      numbers,
      sum((g) => designCount(g.construction, g.ranks, g.shape.dIn, g.shape.dOut, g.shape.heads, g.shape.layers, g.shape.projections.length, cfg.factorization)),
    );
    for (const [k, t] of set.tensors)
      assert.equal(
        t.data.length,
        t.shape.reduce((a, b) => a * b, 1),
        k,
      );
    // scaling: PEFT's alpha / r (rsLoRA alpha / √r) for LoRA, the given s (default 1) otherwise
    const o = row.opts;
    const r0 = typeof o.ranks === "number" ? o.ranks : o.ranks[0];
    const s = o.construction === "lora" && o.loraAlpha !== undefined ? (o.useRslora ? o.loraAlpha / Math.sqrt(r0) : o.loraAlpha / r0) : (o.scaling ?? 1);
    assert.equal(cfg.scaling, s);

    const r = await modelRunner({ model, hf, adapter: set, trainable: "adapter+head", loss: true, grads: true });
    try {
      // 2. graph inputs: the batch, the labels, the adapter and the head; every frozen weight is an initializer
      const inputs = new Set(r.built.graph.inputs.map((v) => v.name!));
      const expected = new Set([...Object.keys(model.family.feeds(model.config, hf)), "labels", ...set.tensors.keys(), ...headKeys]);
      assert.deepEqual([...inputs].sort(), [...expected].sort());
      const inits = new Set([...r.built.graph.initializers.keys()].map((v) => v.name!));
      for (const k of model.weights.keys()) if (!headKeys.includes(k)) assert.ok(inits.has(k), `frozen weight ${k} must be an initializer`);
      assert.deepEqual(r.built.trainable.filter((n) => !set.tensors.has(n)).sort(), [...headKeys].sort());

      // 3. zero update at initialisation
      const init = await r.run(hf, { labels });
      assert.ok(maxAbsDiff(outF32(init, "logits"), baseLogits) < 1e-6, "at initialisation the logits must equal the base model's");
      const merged0 = mergeAdapter(model.weights, set);
      for (const [k, w] of model.weights) assert.ok(sameBits(merged0.get(k)!.data, w.data), `merging the initial adapter changed ${k}`);

      // 4. random non-zero parameters: merge ≡ unmerged, unmerge restores
      const rset = withUpdateSize(randomizeAdapter(set, 50 + ri, 0.3), model.weights, 0.05);
      const out = await r.run(hf, { labels, params: rset.tensors });
      const logits = outF32(out, "logits");
      assert.ok(maxAbsDiff(logits, baseLogits) > 1e-3, "a non-zero update must change the logits");
      const merged = mergeAdapter(model.weights, rset);
      const mergedLogits = outF32(await base.run(hf, { params: merged }), "logits");
      const dMerge = maxAbsDiff(mergedLogits, logits);
      worstMerge = Math.max(worstMerge, dMerge);
      assert.ok(dMerge < 1e-5, `merged and unmerged logits differ by ${dMerge}`);
      // the merged ΔW is the update docs/adapters.md §2 defines (the entry-by-entry fold of test/helpers.ts)
      const naive = naiveDeltaMap(rset);
      for (const [k, want] of naive) {
        const w = model.weights.get(k)!.data;
        const delta = merged.get(k)!.data.map((v, i) => v - w[i]);
        // float32 rounding of w + ΔW, plus the update's own float32 arithmetic
        const tol = 2 ** -23 * maxAbs(w) + 1e-5 * maxAbs(want);
        const d = maxAbsDiff(delta, want);
        assert.ok(d < tol, `${k}: merged − base differs from the folded ΔW by ${d} (tolerance ${tol})`);
      }
      const adapted = new Set(naive.keys());
      const restored = unmergeAdapter(merged, rset);
      for (const [k, w] of model.weights) {
        const u = restored.get(k)!.data;
        if (!adapted.has(k)) {
          assert.ok(sameBits(u, w.data), `${k} is not adapted and must be untouched`);
          continue;
        }
        const m = merged.get(k)!.data;
        assert.ok(maxAbsDiff(m, w.data) > 0, `${k} must change when merged`);
        for (let i = 0; i < u.length; i++) {
          // two float32 roundings: of w + δ, then of (w + δ) − δ
          const bound = 2 ** -23 * (Math.abs(w.data[i]) + Math.abs(m[i] - w.data[i])) + 1e-30;
          if (Math.abs(u[i] - w.data[i]) > bound) assert.fail(`${k}[${i}]: unmerge gives ${u[i]}, the weight was ${w.data[i]}`);
        }
      }

      // 5. save → load
      const head: WeightMap = new Map(headKeys.map((k) => [k, model.weights.get(k)!]));
      const { dir, cleanup } = tempDir("contract");
      try {
        saveAdapter(dir, rset, ctx, head);
        const loaded = loadAdapter(dir, ctx);
        assert.deepEqual([...loaded.set.tensors.keys()].sort(), [...rset.tensors.keys()].sort());
        for (const [k, t] of rset.tensors) {
          const got = loaded.set.tensors.get(k)!;
          assert.deepEqual(got.shape, t.shape, k);
          assert.ok(sameBits(got.data, t.data), `${k} did not round-trip bit for bit`);
        }
        for (const [k, t] of head) assert.ok(sameBits(loaded.head.get(k)!.data, t.data), `head ${k} did not round-trip`);
        const lc = loaded.set.config;
        assert.deepEqual(
          [lc.construction, lc.ranks, lc.factorization, lc.scaling, lc.headLayout, lc.targetModules],
          [cfg.construction, cfg.ranks, cfg.factorization, cfg.scaling, cfg.headLayout, cfg.targetModules],
        );
        const again = outF32(await r.run(hf, { labels, params: loaded.set.tensors }), "logits");
        assert.ok(
          again.every((v, i) => v === logits[i]),
          "the loaded adapter must give identical logits",
        );
      } finally {
        cleanup();
      }

      // 6. gradients against central differences of the compiled float32 loss (the core and every
      //    factor of the first and last tensor; LoRA: A and B of the first and last projection)
      const rng = new Rng(900 + ri);
      // every group's first and last tensor (LoRA: the pairs of its first and last site)
      const checked = rset.groups.flatMap((gr) => {
        const keys = [...groupParameterShapes(cfg, gr).keys()];
        const sites = gr.grid.flat();
        const lastTensor = tensorCount(gr.construction, gr.shape) - 1;
        const ends = gr.construction === "lora" ? [sites[0], sites.at(-1)!].map((s) => `.${s.path}.`) : [0, lastTensor].map((t) => tensorKey(t, "", gr.index));
        return keys.filter((k) => ends.some((e) => (gr.construction === "lora" ? k.includes(e) : k.startsWith(e))));
      });
      const g0 = rset.groups[0];
      const perTensor = cfg.construction === "lora" ? 4 : FACTORIZATIONS[cfg.factorization].params(tensorModes(g0.construction, g0.shape), g0.ranks).length;
      assert.ok(checked.length >= perTensor, `too few tensors checked: ${checked}`);
      for (const k of checked) {
        const t = rset.tensors.get(k)!;
        const g = outF32(out, `grad.${k}`);
        const gNorm = Math.sqrt(dot(g, g));
        assert.ok(gNorm > 1e-5, `${k}: the gradient is zero, the check would be empty`);
        // a random direction, and the direction of the gradient itself
        for (const v of [Float64Array.from(rng.normalArray(t.data.length)), Float64Array.from(g)]) {
          const n = Math.sqrt(dot(v, v));
          v.forEach((x, i) => (v[i] = x / n));
          const lossAt = async (step: number) => {
            const params = new Map(rset.tensors);
            params.set(k, { shape: t.shape, data: Float32Array.from(t.data, (x, i) => x + step * v[i]) });
            return Number(outF32(await r.run(hf, { labels, params }), "loss")[0]);
          };
          // five-point stencil: error O(h⁴), so h can be large enough for float32's loss to resolve
          const numeric = (8 * ((await lossAt(H)) - (await lossAt(-H))) - ((await lossAt(2 * H)) - (await lossAt(-2 * H)))) / (12 * H);
          const err = Math.abs(dot(g, v) - numeric) / gNorm;
          worstFd = Math.max(worstFd, err);
          assert.ok(err < 5e-3, `${k}: ⟨grad, v⟩ = ${dot(g, v)}, central difference ${numeric}, ‖grad‖ ${gNorm}`);
        }
      }
    } finally {
      r.dispose();
    }
  });
}

test("contract summary", async (t) => {
  t.diagnostic(
    `${ROWS.length} rows; worst |merged − unmerged| logits ${worstMerge.toExponential(2)}; worst directional-derivative error ${worstFd.toExponential(2)} (relative to ‖grad‖)`,
  );
  for (const s of setups.values()) (await s).base.dispose();
});
