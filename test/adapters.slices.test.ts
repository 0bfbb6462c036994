/**
 * Slices without materialisation: for every construction × both
 * head layouts × Tucker, CP, tensor-train and partial Tucker, the matrix s · U_in R[p,l] computed in an ONNX graph (by
 * `allSlicesR` + U_in, and by the projection hook the models use, fed the identity, with the slices
 * built all at once and one by one) equals the
 * same slice of the fully folded tensor: `updateMatrixFolded` (src/adapters/reference.ts) and
 * the entry-by-entry fold of test/helpers.ts, to 1e-5 relative. One graph holds every case.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type AdapterSet, createAdapterSet, groupState } from "../src/adapters/adapter-set.ts";
import { type AdapterOptions, planAdapter } from "../src/adapters/config.ts";
import {
  CONSTRUCTIONS,
  CONSTRUCTION_SPECS,
  type Construction,
  type ModelShape,
  modeNames,
  slicesOfTensor,
  tensorCount,
} from "../src/adapters/constructions.ts";
import { adapterHook, allSlicesR } from "../src/adapters/inject.ts";
import { ADAPTER_METHODS } from "../src/adapters/methods.ts";
import { FACTORIZATIONS, type Factorization } from "../src/adapters/factorizations/index.ts";
import { type HeadLayout, updateMatrixFolded } from "../src/adapters/reference.ts";
import { grad } from "../src/autodiff/vjp.ts";
import * as b from "../src/ir/builder.ts";
import { Op } from "../src/ir/ops.ts";
import { Graph, type Value } from "../src/ir/graph.ts";
import type { LinearSite } from "../src/models/types.ts";
import { compile } from "../src/runtime/session.ts";
import { headSite, matrixModeNames, maxAbsDiff, maxRelDiff, naiveDeltaWeights, randomizeAdapter } from "./helpers.ts";

const D = 16;
const SHAPE: ModelShape = { dIn: D, dOut: D, heads: 4, layers: 3, projections: ["query", "key", "value"] };
/** Distinct ranks per mode, so a swapped mode cannot go unnoticed. */
const RANK: Record<string, number> = { in: 5, out: 3, dh: 3, heads: 2, qkv: 2, depth: 3 };
const CP_RANK = 4;
/** Distinct tensor-train bond ranks (the first N − 1 for N modes). */
const TT_BONDS = [4, 3, 2, 3];
const SCALING = 1.7;

interface Case {
  id: string;
  set: AdapterSet;
}

function sites(): LinearSite[] {
  return SHAPE.projections.flatMap((name) => Array.from({ length: SHAPE.layers }, (_, l) => headSite(name, l, D, SHAPE.heads)));
}

function adapterOn(o: AdapterOptions, seed: number): AdapterSet {
  const { config, groups } = planAdapter(o, sites());
  return createAdapterSet(config, groups, seed);
}

const cases: Case[] = [];
let seed = 1;
for (const construction of CONSTRUCTIONS) {
  for (const headLayout of ["head_major", "interleaved"] as HeadLayout[]) {
    const facts: Factorization[] = construction === "lora" ? ["tucker"] : ["tucker", "cp", "tt", "partial_tucker"];
    for (const factorization of facts) {
      const names = modeNames(construction);
      const ranks =
        construction === "lora"
          ? 3
          : factorization === "cp"
            ? CP_RANK
            : factorization === "tt"
              ? TT_BONDS.slice(0, names.length - 1)
              : (factorization === "partial_tucker" ? matrixModeNames(construction) : names).map((m) => RANK[m]);
      const set = randomizeAdapter(adapterOn({ construction, ranks, factorization, headLayout, scaling: SCALING }, seed), 1000 + seed++, 0.7);
      cases.push({ id: `${construction}/${factorization}/${headLayout}`, set });
    }
  }
}

test("every construction × head layout × factorisation: s·U_in·R[p,l] in ONNX Runtime equals the folded tensor's slice", async (t) => {
  const g = new Graph();
  const eye = g.initializer(
    "eye",
    Float32Array.from({ length: D * D }, (_, i) => (i % (D + 1) === 0 ? 1 : 0)),
    [D, D],
  );
  for (const { id, set } of cases) {
    const cache = new Map<string, Value>();
    const get = (name: string) => {
      let v = cache.get(name);
      if (!v) {
        const w = set.tensors.get(name)!;
        cache.set(name, (v = g.initializer(`${id}:${name}`, w.data, w.shape)));
      }
      return v;
    };
    const { construction } = set.config;
    const spec = CONSTRUCTION_SPECS[construction];
    if (ADAPTER_METHODS[construction].factorised) {
      for (let tn = 0; tn < tensorCount(construction, SHAPE); tn++) {
        const all = allSlicesR(set, tn, get); // [r_in, S, dOut], S = P·L slices p-major
        const [rIn, , dOut] = all.shape as number[];
        for (const { p, l } of slicesOfTensor(construction, SHAPE, tn)) {
          const i = (spec.stacksProjections ? p : 0) * (spec.stacksDepth ? SHAPE.layers : 1) + (spec.stacksDepth ? l : 0);
          const r = b.reshape(b.slice(all, 1, i, i + 1), [rIn, dOut]);
          const u = get(`tenslora.${tn}.${FACTORIZATIONS[set.config.factorization].inputKey}`);
          g.output(`${id}:${p}.${l}:slices`, b.matmul(b.reshape(u, [D, rIn]), r, { alpha: set.config.scaling })); // [dIn, dOut]
        }
      }
    }
    // the hook the models call, with each layer's projections as one group: x = I gives s·U_in R[p,l]
    // itself; "one by one" builds each slice alone, as large groups do
    for (const [route, options] of [
      ["hook", {}],
      ["one by one", { rematSliceBytes: 0 }],
    ] as const) {
      const hook = adapterHook(set, get, options);
      for (let l = 0; l < SHAPE.layers; l++)
        hook(
          eye,
          set.groups[0].grid.map((row) => row[l]),
        ).forEach((delta, p) => g.output(`${id}:${p}.${l}:${route}`, delta!));
    }
  }
  const compiled = await compile(g);
  const out = await compiled.run({});
  compiled.dispose();

  let worst = 0;
  let count = 0;
  for (const { id, set } of cases) {
    const state = groupState(set, set.groups[0]);
    const naive = naiveDeltaWeights(set); // ΔW [dOut, dIn] = s·Mᵀ
    for (let p = 0; p < 3; p++) {
      for (let l = 0; l < SHAPE.layers; l++) {
        const folded = updateMatrixFolded(state, p, l).data.map((v) => v * SCALING); // s·M [dIn, dOut]
        const naiveM = new Float64Array(D * D);
        for (let i = 0; i < D; i++) for (let o = 0; o < D; o++) naiveM[i * D + o] = naive[p][l][o * D + i];
        // the two CPU folds agree with each other ...
        assert.ok(maxRelDiff(folded, naiveM) < 1e-6, `${id} (${p}, ${l}): updateMatrixFolded and the naive fold disagree by ${maxRelDiff(folded, naiveM)}`);
        assert.ok(maxAbsDiff(naiveM, new Float64Array(D * D)) > 1e-3, `${id}: the slice must not be zero`);
        // ... and ONNX Runtime's sliced path equals them
        for (const route of ADAPTER_METHODS[set.config.construction].factorised ? ["slices", "hook", "one by one"] : ["hook"]) {
          const got = out[`${id}:${p}.${l}:${route}`].data as Float32Array;
          const rel = maxRelDiff(got, naiveM);
          assert.ok(rel < 1e-5, `${id} (p ${p}, l ${l}) via ${route}: relative difference ${rel}`);
          worst = Math.max(worst, rel);
          count++;
        }
      }
    }
  }
  t.diagnostic(`${cases.length} cases, ${count} slices compared; worst relative difference ${worst.toExponential(2)}`);
});

test("the head layouts really differ: head_major and interleaved give other matrices for att constructions only", () => {
  const att = (c: Construction) => CONSTRUCTION_SPECS[c].hasAtt;
  for (const c of CONSTRUCTIONS) {
    if (c === "lora") continue;
    const [hm, il] = (["head_major", "interleaved"] as HeadLayout[]).map((headLayout) => {
      const set = randomizeAdapter(adapterOn({ construction: c, ranks: modeNames(c).map((m) => RANK[m]), headLayout }, 3), 77);
      return updateMatrixFolded(groupState(set, set.groups[0]), 1, 2).data;
    });
    const d = maxAbsDiff(hm, il);
    assert.ok(att(c) ? d > 1e-3 : d === 0, `${c}: head layouts differ by ${d}`);
  }
});

/** A graph whose loss sums the squares of every layer's updates on the first group, its parameters as graph inputs. */
function updateLoss(set: AdapterSet, rematSliceBytes: number | undefined): { g: Graph; params: Map<string, Value>; loss: Value } {
  const g = new Graph();
  const params = new Map<string, Value>();
  const get = (name: string) => {
    if (!params.has(name)) params.set(name, g.input(name, "float32", [...set.tensors.get(name)!.shape]));
    return params.get(name)!;
  };
  const x = g.input("x", "float32", [2, D]);
  const hook = adapterHook(set, get, { rematSliceBytes });
  let loss: Value | undefined;
  for (let l = 0; l < SHAPE.layers; l++) {
    for (const delta of hook(
      x,
      set.groups[0].grid.map((row) => row[l]),
    )) {
      const s = b.reduceSum(b.mul(delta!, delta!), [0, 1]);
      loss = loss ? b.add(loss, s) : s;
    }
  }
  return { g, params, loss: loss! };
}

test("Tucker slices and their gradients are GEMMs and reshapes: no Einsum and no Transpose in the step", () => {
  // ONNX Runtime ran both slowly on the core's small shapes (10 ms for one 1.6 MB transpose on 16 threads)
  for (const [{ id, set }, rematSliceBytes] of cases.flatMap((c) => [[c, undefined] as const, [c, 0] as const])) {
    if (set.config.factorization !== "tucker" || set.config.construction === "lora") continue;
    const { g, params, loss } = updateLoss(set, rematSliceBytes);
    grad(loss, [...params.values()]);
    const ops = new Set(g.nodes.map((n) => n.op));
    assert.ok(!ops.has(Op.Einsum) && !ops.has(Op.Transpose), `${id}${rematSliceBytes === 0 ? " (one by one)" : ""}: the step has ${[...ops].join(", ")}`);
  }
});

test("one by one, the forward pass never holds every slice at once, and the backward pass builds each slice again", () => {
  const set = randomizeAdapter(adapterOn({ construction: "qkv_depth", ranks: modeNames("qkv_depth").map((m) => RANK[m]) }, 5), 91);
  const allSlices = 3 * SHAPE.layers * RANK.in * D; // P·L slices of [r_in, dOut]
  for (const rematSliceBytes of [undefined, 0]) {
    const { g, params, loss } = updateLoss(set, rematSliceBytes);
    const forward = new Set(g.nodes);
    const grads = grad(loss, [...params.values()]);
    // the nodes the gradients need, as the ONNX export keeps them
    const needed = new Set<Value>(grads);
    const kept = [...g.nodes].reverse().filter((n) => {
      if (!n.outputs.some((o) => needed.has(o))) return false;
      for (const v of n.inputs) needed.add(v);
      return true;
    });
    const size = (v: Value) => (v.shape as number[]).reduce((a, d) => a * d, 1);
    const largestForward = Math.max(...kept.filter((n) => forward.has(n)).flatMap((n) => n.outputs.map(size)));
    // a slice's last product, [T = 1, r_in, dOut]
    const builds = kept.filter((n) => n.op === Op.MatMul && n.outputs[0].shape.join() === `1,${RANK.in},${D}`);
    if (rematSliceBytes === undefined) {
      assert.equal(largestForward, allSlices, "all at once: the forward pass builds every slice in one value");
    } else {
      assert.ok(largestForward < allSlices, `one by one: a forward value of ${largestForward} numbers (all slices: ${allSlices})`);
      // every (p, l) once in the forward pass and once in the backward pass
      assert.equal(builds.filter((n) => forward.has(n)).length, 3 * SHAPE.layers);
      assert.equal(builds.filter((n) => !forward.has(n)).length, 3 * SHAPE.layers);
    }
  }
});
