/**
 * Grouped-query attention at the adapter level, on synthetic linear-site lists of a decoder
 * block (q [d → H·dh], k/v [d → H_kv·dh], o [H·dh → d]) with H / H_kv = 2, 3 and MQA (H_kv = 1):
 * for every construction, K/V's update in ONNX Runtime (the hook) equals x·ΔWᵀ with ΔW from
 * merge, and merge's ΔW equals the independent fold of test/helpers.ts (K/V rows the mean over
 * their query-head group, the attention output transposed); the parameter count equals the
 * tensors and the group's formula; the export to LoRA gives B·A = ΔW; the hook's gradients equal central differences of the same
 * loss computed on the host in float64.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type AdapterSet, adapterParamCount } from "../src/adapters/adapter-set.ts";
import type { AdapterOptions } from "../src/adapters/config.ts";
import { CONSTRUCTIONS, type Construction, modeNames } from "../src/adapters/constructions.ts";
import { adapterHook } from "../src/adapters/inject.ts";
import { loraModules } from "../src/adapters/export.ts";
import { mergeAdapter } from "../src/adapters/merge.ts";
import { paramCount } from "../src/adapters/params.ts";
import type { LinearSite } from "../src/nn/sites.ts";
import { ConfigError } from "../src/errors.ts";
import { Graph, type Value } from "../src/ir/graph.ts";
import type { WeightMap } from "../src/nn/params.ts";
import { compile } from "../src/runtime/session.ts";
import { matmul } from "../src/tensor/dense.ts";
import { Rng } from "../src/tensor/random.ts";
import { maxRelDiff, naiveDeltaMap, planSet, randomizeAdapter } from "./helpers.ts";
import { checkProbeGradients, runProbeGraph } from "./probe-loss.ts";

const LAYERS = 2;
const TOKENS = 3;

interface Block {
  id: string;
  d: number;
  heads: number;
  kvHeads: number;
  dh: number;
}

/** d = H·dh, so o is square and joins q's group. */
const BLOCKS: Block[] = [
  { id: "H4/Hkv2", d: 12, heads: 4, kvHeads: 2, dh: 3 },
  { id: "H6/Hkv2", d: 12, heads: 6, kvHeads: 2, dh: 2 },
  { id: "MQA H4/Hkv1", d: 12, heads: 4, kvHeads: 1, dh: 3 },
];

function decoderSites(k: Block): LinearSite[] {
  const { d, heads, kvHeads, dh } = k;
  const sites: LinearSite[] = [];
  for (let l = 0; l < LAYERS; l++) {
    const at = (name: string) => `model.layers.${l}.self_attn.${name}`;
    sites.push({ path: at("q_proj"), name: "q_proj", layer: l, inFeatures: d, outFeatures: heads * dh, heads: { side: "out", count: heads, dim: dh } });
    for (const name of ["k_proj", "v_proj"]) {
      sites.push({
        path: at(name),
        name,
        layer: l,
        inFeatures: d,
        outFeatures: kvHeads * dh,
        heads: { side: "out", count: kvHeads, dim: dh, queryHeads: heads },
      });
    }
    sites.push({ path: at("o_proj"), name: "o_proj", layer: l, inFeatures: heads * dh, outFeatures: d, heads: { side: "in", count: heads, dim: dh } });
    sites.push({ path: `model.layers.${l}.mlp.up_proj`, name: "up_proj", layer: l, inFeatures: d, outFeatures: 2 * d });
  }
  return sites;
}

/** Distinct ranks per mode, so that a swapped mode shows. */
const RANK: Record<string, number> = { in: 4, out: 3, dh: 2, heads: 3, qkv: 2, depth: 2 };

interface Case {
  id: string;
  block: Block;
  sites: LinearSite[];
  set: AdapterSet;
}

const cases: Case[] = [];
let seed = 1;
for (const block of BLOCKS) {
  const sites = decoderSites(block);
  const add = (opts: AdapterOptions) => {
    const set = randomizeAdapter(planSet(sites, opts, seed), 100 + seed++, 0.5);
    cases.push({
      id: `${block.id} ${opts.construction}/${opts.factorization ?? "tucker"}/${opts.gqa ?? "mean"}/${JSON.stringify(opts.targetModules)}`,
      block,
      sites,
      set,
    });
  };
  for (const c of CONSTRUCTIONS) {
    const ranks = c === "lora" ? 2 : modeNames(c).map((m) => RANK[m]);
    add({ construction: c, ranks, targetModules: ["q_proj", "k_proj", "v_proj"], scaling: 1.3 });
  }
  add({ construction: "att_qkv_depth", ranks: 3, factorization: "cp", targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"] });
  add({ construction: "att_qkv", ranks: [4, 2, 3, 2], targetModules: "all-linear" });
  add({ construction: "att_qkv_depth", ranks: [4, 2, 2, 2, 2], targetModules: ["q_proj", "k_proj", "v_proj"], gqa: "separate" });
}

const x = new Rng(7).normalArray(TOKENS * 12);

test("GQA: the graph's K/V/O updates equal x·ΔWᵀ of merge, merge equals the independent fold, counts equal the formula", async (t) => {
  const g = new Graph();
  const xv = g.initializer("x", x, [TOKENS, 12]);
  for (const { id, set } of cases) {
    const params = new Map<string, Value>();
    const get = (name: string) => {
      if (!params.has(name)) {
        const w = set.tensors.get(name)!;
        params.set(name, g.initializer(`${id}:${name}`, w.data, w.shape));
      }
      return params.get(name)!;
    };
    const hook = adapterHook(set, get);
    for (const group of set.groups) {
      for (const site of group.grid.flat()) g.output(`${id}:${site.path}`, hook(xv, [site])[0]!);
    }
  }
  const compiled = await compile(g);
  const out = await compiled.run({});
  compiled.dispose();
  let worst = 0;
  for (const { id, block, sites, set } of cases) {
    // counts: the file's numbers = Σ over groups of the group's formula
    const groupSum = set.groups.reduce((n, gr) => n + paramCount(gr.construction, gr.shape, gr.ranks, set.config.factorization), 0);
    assert.equal(adapterParamCount(set), groupSum, `${id}: count`);
    // merge ΔW against the independent fold, and the graph's update against x·ΔWᵀ
    const zeros: WeightMap = new Map(
      sites.map((s) => [`${s.path}.weight`, { shape: [s.outFeatures, s.inFeatures], data: new Float32Array(s.outFeatures * s.inFeatures) }]),
    );
    const merged = mergeAdapter(zeros, set);
    const naive = naiveDeltaMap(set);
    // the export to LoRA: B·A of every site is its ΔW
    for (const m of loraModules(set)) {
      const ba = matmul(m.b, m.a);
      assert.ok(maxRelDiff(ba.data, naive.get(`${m.site.path}.weight`)!) < 1e-6, `${id}: ${m.site.path} exported B·A`);
    }
    assert.equal(
      naive.size,
      set.groups.reduce((n, gr) => n + gr.grid.flat().length, 0),
    );
    for (const [key, want] of naive) {
      const got = merged.get(key)!.data;
      assert.ok(maxRelDiff(got, want) < 1e-5, `${id}: ${key} merge vs fold ${maxRelDiff(got, want)}`);
      const site = sites.find((s) => `${s.path}.weight` === key)!;
      const y = new Float64Array(TOKENS * site.outFeatures);
      for (let i = 0; i < TOKENS; i++) {
        for (let o = 0; o < site.outFeatures; o++) {
          let v = 0;
          for (let k = 0; k < site.inFeatures; k++) v += x[i * 12 + k] * want[o * site.inFeatures + k];
          y[i * site.outFeatures + o] = v;
        }
      }
      const rel = maxRelDiff(out[`${id}:${site.path}`].data as Float32Array, y);
      worst = Math.max(worst, rel);
      assert.ok(rel < 1e-5, `${id}: ${site.path} hook vs x·ΔWᵀ ${rel}`);
    }
    // K/V under the mean rule really are group means: rows of one K/V head average g query-head slices
    const kvGroup = set.groups.find((gr) => gr.members.some((m) => m.kv));
    if (set.config.gqa === "mean" && set.config.construction !== "lora") {
      assert.ok(kvGroup, `${id}: K/V must share Q's group`);
      assert.deepEqual(kvGroup.members.find((m) => m.name === "k_proj")!.kv, { heads: block.kvHeads, dim: block.dh });
    } else {
      assert.equal(kvGroup, undefined, `${id}: K/V must form their own group`);
    }
  }
  t.diagnostic(`${cases.length} cases; worst relative difference ${worst.toExponential(2)}`);
});

test("GQA: the hook's gradients equal central differences of the host loss (float64)", async () => {
  const picks = cases.filter((c, i) => i % 3 === 0 || c.set.config.construction === "att_qkv_depth");
  const xs = new Map([[12, x]]);
  for (const { id, set } of picks) {
    const rng = new Rng(31);
    checkProbeGradients(set, await runProbeGraph(set, xs, TOKENS, rng), xs, TOKENS, rng, id);
  }
});

test("GQA: heads that do not divide, and att on targets without heads, are one-line ConfigErrors naming the fix", () => {
  const bad = decoderSites({ id: "bad", d: 12, heads: 4, kvHeads: 3, dh: 3 });
  assert.throws(
    () => planSet(bad, { construction: "qkv", ranks: 2, targetModules: ["q_proj", "k_proj"] }),
    (e: Error) =>
      e instanceof ConfigError &&
      /4 query heads cannot share 3 key\/value heads/.test(e.message) &&
      /num_key_value_heads/.test(e.message) &&
      !e.message.includes("\n"),
  );
  assert.throws(
    () => planSet(decoderSites(BLOCKS[0]), { construction: "att_qkv" as Construction, ranks: 2, targetModules: ["up_proj"] }),
    (e: Error) => e instanceof ConfigError && /none of the targets \(up_proj\)/.test(e.message) && /use "qkv"/.test(e.message),
  );
});
