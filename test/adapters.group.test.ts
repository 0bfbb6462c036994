/**
 * Projections that read the same input as one group: the hook's updates (and their gradients)
 * equal the one-site-at-a-time updates, and the differentiated graph reads x with one input-side
 * GEMM forward, one for the factors' gradient and one GEMM for dx, however many projections adapt.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createAdapterSet } from "../src/adapters/adapter-set.ts";
import { planAdapter } from "../src/adapters/config.ts";
import type { Construction, ModelShape } from "../src/adapters/constructions.ts";
import { adapterHook } from "../src/adapters/inject.ts";
import { grad } from "../src/autodiff/vjp.ts";
import * as b from "../src/ir/builder.ts";
import { Graph, type Value } from "../src/ir/graph.ts";
import { Op } from "../src/ir/ops.ts";
import type { LinearSite } from "../src/models/types.ts";
import { ParamScope } from "../src/nn/params.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import { Rng } from "../src/tensor/random.ts";
import { headSite, maxRelDiff, randomizeAdapter } from "./helpers.ts";

const D = 16;
const [BATCH, T] = [2, 5];
const SHAPE: ModelShape = { dIn: D, dOut: D, heads: 4, layers: 2, projections: ["query", "key", "value"] };
const site = (name: string, l: number): LinearSite => headSite(name, l, D, SHAPE.heads);
const grid = SHAPE.projections.map((name) => [0, 1].map((l) => site(name, l)));
/** Layer 1's q, k, v plus a layer the adapter does not cover, in the middle of the group. */
const GROUP = [grid[0][1], grid[1][1], site("other", 1), grid[2][1]];

/** The updates for GROUP (grouped or one site per call), a loss over them, and its gradients. */
function build(construction: Construction, grouped: boolean) {
  const ranks = construction === "lora" ? 3 : [5, 3, 2];
  const { config, groups } = planAdapter({ construction, ranks, scaling: 1.7 }, grid.flat());
  const set = randomizeAdapter(createAdapterSet(config, groups, 1), 11, 0.7);
  const g = new Graph();
  const scope = new ParamScope(g, set.tensors, () => true);
  const x = g.input("x", "float32", [BATCH, T, D]);
  const hook = adapterHook(set, (n) => scope.get(n));
  const deltas = grouped ? hook(x, GROUP) : GROUP.map((s) => hook(x, [s])[0]);
  assert.equal(deltas[2], undefined, `${construction}: the uncovered layer must get no update`);
  const adapted = deltas.filter((d): d is Value => d !== undefined);
  adapted.forEach((d, i) => g.output(`delta.${i}`, d));
  const readsX = (n: { inputs: Value[] }) => n.inputs.some((v) => v === x || (v.producer?.op === Op.Reshape && v.producer.inputs[0] === x));
  const forward = g.nodes.filter((n) => n.op === Op.MatMul && readsX(n));
  const inputFactors = new Set(forward.map((n) => n.inputs[1])); // A's or U_in's, concatenated or not
  // mean of squares: a plain sum would give every update a constant cotangent
  const loss = adapted.map((d) => b.reduceMean(b.mul(d, d), [0, 1, 2])).reduce((acc, l) => b.add(acc, l));
  const names = scope.trainable.map((t) => t.name);
  const grads = grad(loss, [x, ...scope.trainable.map((t) => t.value)]);
  g.output("grad.x", grads[0]);
  names.forEach((n, i) => g.output(`grad.${n}`, grads[i + 1]));
  const matmuls = g.nodes.filter((n) => n.op === Op.MatMul);
  const feeds: Record<string, HostTensor> = {
    x: { dtype: "float32", shape: [BATCH, T, D], data: new Rng(5).normalArray(BATCH * T * D) },
  };
  for (const n of names) feeds[n] = { dtype: "float32", shape: set.tensors.get(n)!.shape, data: set.tensors.get(n)!.data };
  return {
    graph: g,
    feeds,
    forwardReads: forward.length,
    totalReads: matmuls.filter(readsX).length,
    // dx = du · (input factor): the factor is read again, by a MatMul that does not read x
    dxGemms: matmuls.filter((n) => !readsX(n) && inputFactors.has(n.inputs[1])).length,
  };
}

for (const construction of ["lora", "att", "qkv"] as const) {
  test(`${construction}: one hook call for q, k, v equals three, with one GEMM on x each way`, async () => {
    const [one, each] = [build(construction, true), build(construction, false)];
    assert.equal(one.forwardReads, 1, `${construction}: the group's forward reads x with ${one.forwardReads} MatMuls, expected 1`);
    assert.equal(one.totalReads, 2, `${construction}: forward + backward read x with ${one.totalReads} MatMuls, expected 2 (x·U_in, d U_in)`);
    assert.equal(one.dxGemms, 1, `${construction}: ${one.dxGemms} MatMuls produce dx, expected 1`);
    assert.equal(each.totalReads, 6, `${construction}: one site per call should read x 6 times (3 forward, 3 backward), got ${each.totalReads}`);
    assert.equal(each.dxGemms, 3, `${construction}: one site per call should have 3 dx GEMMs, got ${each.dxGemms}`);
    const [a, r] = await Promise.all(
      [one, each].map(async ({ graph, feeds }) => {
        const c = await compile(graph);
        const out = await c.run(feeds);
        c.dispose();
        return out;
      }),
    );
    assert.deepEqual(Object.keys(a).sort(), Object.keys(r).sort(), `${construction}: both graphs must have the same outputs`);
    for (const k of Object.keys(r)) {
      const rel = maxRelDiff(a[k].data as Float32Array, r[k].data as Float32Array);
      assert.ok(rel < 1e-5, `${construction} ${k}: grouped and per-site differ by ${rel} (relative)`);
    }
  });
}
