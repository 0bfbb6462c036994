/**
 * Contracts of the reverse-mode engine (src/autodiff/vjp.ts), as opposed to single rules: it walks
 * only the paths from the loss to the requested targets, accumulates fan-out, sums broadcast
 * cotangents back to the operand's shape, gives zeros to targets the loss ignores, and insists on
 * a scalar loss.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { grad } from "../src/autodiff/vjp.ts";
import { ShapeError } from "../src/errors.ts";
import * as b from "../src/ir/builder.ts";
import { gelu, layerNorm, linear } from "../src/ir/functional.ts";
import { customVjp } from "../src/ir/custom-vjp.ts";
import { Graph, type Node, type Value } from "../src/ir/graph.ts";
import { Op } from "../src/ir/ops.ts";
import { type HostTensor, hostTensor } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";

const F64 = "float64";
const f64 = (shape: number[], f: (i: number) => number): HostTensor =>
  hostTensor(
    F64,
    shape,
    Float64Array.from({ length: shape.reduce((a, c) => a * c, 1) }, (_, i) => f(i)),
  );

/** The nodes `grad` appended (from index `before` on). */
const added = (g: Graph, before: number): Node[] => g.nodes.slice(before);

/** Appended nodes that no returned gradient depends on: work spent off every path to a target. */
function deadNodes(g: Graph, before: number, grads: Value[]): Node[] {
  const need = new Set<Value>(grads);
  const live = new Set<Node>();
  for (let i = g.nodes.length - 1; i >= before; i--) {
    const n = g.nodes[i];
    if (n.outputs.some((o) => need.has(o))) {
      live.add(n);
      for (const x of n.inputs) need.add(x);
    }
  }
  return added(g, before).filter((n) => !live.has(n));
}

async function run(g: Graph, feeds: Record<string, HostTensor>): Promise<Record<string, Float64Array>> {
  const s = await compile(g, { threads: 1 });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float64Array]));
  } finally {
    s.dispose();
  }
}

function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12, what = "value"): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test("grad wrt only the bias of a linear layer emits neither the dX nor the dW matmul", async () => {
  const g = new Graph();
  const x = g.input("x", F64, [2, 3, 4]);
  const w = g.initializer(
    "w",
    Float64Array.from({ length: 20 }, (_, i) => Math.sin(i)),
    [5, 4],
    F64,
  ); // frozen
  const bias = g.input("bias", F64, [5]);
  const y = b.tanh(linear(x, w, bias)); // [2, 3, 5]
  const loss = b.reduceSum(y, [0, 1, 2]);
  const before = g.nodes.length;
  const [db] = grad(loss, [bias]);
  const fresh = added(g, before);
  assert.deepEqual(
    fresh.filter((n) => n.op === Op.MatMul || n.op === Op.Einsum),
    [],
    "no contraction: the bias gradient is a sum of tanh′",
  );
  assert.deepEqual(deadNodes(g, before, [db]), [], "every emitted node feeds the gradient");
  // the whole backward pass: seed, expand of the sum, tanh′ (1 − z², 4 nodes), sum over [0, 1] (+ reshape)
  assert.ok(fresh.length <= 10, `${fresh.length} nodes for a bias gradient:\n${g.toString()}`);
  assert.deepEqual([...db.shape], [5]);

  g.output("db", db);
  const xs = f64([2, 3, 4], (i) => Math.cos(i) / 2);
  const bs = f64([5], (i) => i / 10 - 0.2);
  const { db: got } = await run(g, { x: xs, bias: bs });
  // independent: db_o = Σ_{b,t} 1 − tanh²(Σ_i x_{bti} w_{oi} + bias_o)
  const want = new Float64Array(5);
  for (let r = 0; r < 6; r++) {
    for (let o = 0; o < 5; o++) {
      let z = bs.data[o] as number;
      for (let i = 0; i < 4; i++) z += (xs.data[r * 4 + i] as number) * Math.sin(o * 4 + i);
      want[o] += 1 - Math.tanh(z) ** 2;
    }
  }
  assertAllClose(got, want);
});

test("a frozen initializer between the loss and a trainable weight gets no gradient of its own", () => {
  const g = new Graph();
  const x = g.input("x", F64, [2, 3, 4]);
  const w1 = g.input("w1", F64, [6, 4]); // trainable
  const w2 = g.initializer("w2", new Float64Array(30), [5, 6], F64); // frozen
  const h = gelu(linear(x, w1)); // [2, 3, 6]
  const loss = b.reduceMean(linear(h, w2), [0, 1, 2]);
  const before = g.nodes.length;
  const [dw1] = grad(loss, [w1]);
  const mms = added(g, before).filter((n) => n.op === Op.MatMul);
  // one for dh = g·W2 and one for dW1 = gᵀ·x; no dW2 = gᵀ·h and no dx = g·W1
  assert.equal(mms.length, 2, g.toString());
  assert.ok(
    mms.some((n) => n.inputs.includes(w2)),
    "dh uses W2",
  );
  assert.ok(!mms.some((n) => n.inputs.includes(h)), "nothing contracts with h (that would be dW2)");
  assert.ok(!mms.some((n) => n.inputs.includes(w1)), "nothing contracts with W1 (that would be dx)");
  assert.deepEqual(deadNodes(g, before, [dw1]), []);
});

test("no dead gradient nodes when only some operands of an op are targets", () => {
  // each case differentiates w.r.t. one operand of a many-operand op; the others are on no path
  const cases: [string, (g: Graph, t: Value, o: Value) => Value][] = [
    ["Sub, first operand", (_g, t, o) => b.sub(t, o)],
    ["Sub, second operand", (_g, t, o) => b.sub(o, t)],
    ["Div", (_g, t, o) => b.div(t, b.add(b.mul(o, o), 1))],
    ["Pow", (_g, t, o) => b.pow(b.add(b.mul(o, o), 1), t)],
    ["MatMul", (_g, t, o) => b.matmul(o, t, { transB: true })],
    ["Einsum", (_g, t, o) => b.einsum("ij,kj->ik", o, t)],
    ["Where", (g, t, o) => b.where(b.cast(b.constant(g, [1, 0, 1], [3], "int32"), "bool"), t, o)],
    ["Concat", (_g, t, o) => b.concat([o, t, o], 0)],
    ["LayerNorm, bias only", (g, t, o) => layerNorm(o, b.constant(g, 1.5, [3], F64), b.reduceSum(t, [0]), 1e-5)],
    ["LayerNorm, scale only", (g, t, o) => layerNorm(o, b.reduceSum(t, [0]), b.constant(g, 0.5, [3], F64), 1e-5)],
  ];
  for (const [name, f] of cases) {
    const g = new Graph();
    const t = g.input("t", F64, [3, 3]);
    const o = g.input("o", F64, [3, 3]);
    const y = f(g, t, o);
    const loss = b.reduceSum(b.tanh(y), [...Array(y.rank).keys()]);
    const before = g.nodes.length;
    const [dt] = grad(loss, [t]);
    const dead = deadNodes(g, before, [dt]);
    assert.deepEqual(
      dead.map((n) => n.op),
      [],
      `${name}: dead nodes\n${g.toString()}`,
    );
  }
});

test("fan-out: cotangents of a value used several times are accumulated", async () => {
  const g = new Graph();
  const x = g.input("x", F64, [2, 3]);
  // f = Σ x·x·x + 2x + exp(x): x feeds five operand slots in four nodes
  const y = b.add(b.add(b.mul(b.mul(x, x), x), b.mul(x, 2)), b.exp(x));
  const [dx] = grad(b.reduceSum(y, [0, 1]), [x]);
  g.output("dx", dx);
  const xs = f64([2, 3], (i) => i / 3 - 0.8);
  const { dx: got } = await run(g, { x: xs });
  assertAllClose(
    got,
    Array.from(xs.data as Float64Array, (v) => 3 * v * v + 2 + Math.exp(v)),
  );
});

test("broadcast summation: a [1, 4] and a [4] parameter added to [3, 4] / [2, 3, 4] get summed cotangents", async () => {
  const g = new Graph();
  const a = g.input("a", F64, [3, 4]);
  const p = g.input("p", F64, [1, 4]);
  const q = g.input("q", F64, [4]);
  const r = g.input("r", F64, [2, 1, 1]);
  const c = g.input("c", F64, [2, 3, 4]); // the fixed weights of the loss
  const y = b.add(b.add(b.add(a, p), q), r); // [3,4] → [3,4] → [2,3,4]
  const [dp, dq, dr, da] = grad(b.reduceSum(b.mul(y, c), [0, 1, 2]), [p, q, r, a]);
  assert.deepEqual([...dp.shape], [1, 4]);
  assert.deepEqual([...dq.shape], [4]);
  assert.deepEqual([...dr.shape], [2, 1, 1]);
  assert.deepEqual([...da.shape], [3, 4]);
  g.output("dp", dp);
  g.output("dq", dq);
  g.output("dr", dr);
  g.output("da", da);
  const cs = f64([2, 3, 4], (i) => Math.sin(i + 1));
  const cv = (n: number, t: number, k: number) => cs.data[n * 12 + t * 4 + k] as number;
  const z = (s: number[]) => f64(s, () => 0);
  const out = await run(g, { a: z([3, 4]), p: z([1, 4]), q: z([4]), r: z([2, 1, 1]), c: cs });
  const sum = (f: (n: number, t: number, k: number) => boolean) => {
    let s = 0;
    for (let n = 0; n < 2; n++) for (let t = 0; t < 3; t++) for (let k = 0; k < 4; k++) if (f(n, t, k)) s += cv(n, t, k);
    return s;
  };
  const perK = [0, 1, 2, 3].map((k) => sum((_n, _t, kk) => kk === k));
  assertAllClose(out.dp, perK);
  assertAllClose(out.dq, perK);
  assertAllClose(
    out.dr,
    [0, 1].map((n) => sum((nn) => nn === n)),
  );
  assertAllClose(
    out.da,
    Array.from({ length: 12 }, (_, i) => sum((_n, t, k) => t * 4 + k === i)),
  );
});

test("an intermediate value can be a target", async () => {
  const g = new Graph();
  const x = g.input("x", F64, [4]);
  const h = b.tanh(x);
  const [dh, dx] = grad(b.reduceSum(b.mul(h, h), [0]), [h, x]);
  g.output("dh", dh);
  g.output("dx", dx);
  const xs = f64([4], (i) => i / 2 - 1);
  const out = await run(g, { x: xs });
  const hv = Array.from(xs.data as Float64Array, Math.tanh);
  assertAllClose(
    out.dh,
    hv.map((v) => 2 * v),
  );
  assertAllClose(
    out.dx,
    hv.map((v) => 2 * v * (1 - v * v)),
  );
});

test("a target the loss does not depend on gets zeros of its shape and dtype, and no backward work", async () => {
  const g = new Graph();
  const x = g.input("x", F64, [3]);
  const unused = g.input("unused", F64, [2, 2]);
  const frozen = g.initializer("frozen", Float64Array.of(1, 2, 3), [3], F64);
  const loss = b.reduceSum(b.mul(x, frozen), [0]);
  const before = g.nodes.length;
  const [du] = grad(loss, [unused]);
  assert.deepEqual([...du.shape], [2, 2]);
  assert.equal(du.dtype, F64);
  // only the loss seed (unused) and the zero constant may appear
  assert.ok(
    added(g, before).every((n) => n.op === Op.Constant),
    g.toString(),
  );
  g.output("du", du);
  const { du: got } = await run(g, { x: f64([3], (i) => i), unused: f64([2, 2], () => 7) });
  assert.deepEqual(Array.from(got), [0, 0, 0, 0]);
});

test("grad rejects a non-scalar loss with a message naming its shape", () => {
  const g = new Graph();
  const x = g.input("x", F64, [2, 3]);
  assert.throws(
    () => grad(b.tanh(x), [x]),
    (e: unknown) => e instanceof ShapeError && /scalar/.test(e.message) && /\[2,3\]/.test(e.message) && /reduce/.test(e.message),
  );
  assert.throws(() => grad(b.reduceSum(x, [0]), [x]), ShapeError);
  // a shape of all ones is a scalar in disguise and is accepted
  const [dx] = grad(b.reduceSum(x, [0, 1], true), [x]);
  assert.deepEqual([...dx.shape], [2, 3]);
});

// custom-gradient regions (src/ir/custom-vjp.ts): the rule stands in for the region's nodes

test("a custom-gradient region's rule replaces the rules of the nodes inside it", async () => {
  const g = new Graph();
  const x = g.input("x", F64, [4]);
  const h = b.mul(x, 3);
  const y = b.tanh(h);
  // a deliberately different derivative, so the test sees which one the engine used
  customVjp([x], [y], ([dy]) => [b.mul(dy!, 7)]);
  const w = b.constant(g, [1, -2, 0.5, 4], [4], F64);
  const loss = b.reduceSum(b.mul(y, w), [0]);
  const before = g.nodes.length;
  const [dx] = grad(loss, [x]);
  assert.ok(!added(g, before).some((n) => n.op === Op.Tanh || n.inputs.includes(y)), `no tanh′ nodes:\n${g.toString()}`);
  g.output("dx", dx);
  const { dx: got } = await run(g, { x: f64([4], (i) => i / 4) });
  assertAllClose(got, [7, -14, 3.5, 28], 1e-15, "dx from the region's rule");
});

test("a region whose interior also reaches the loss by another path is differentiated node by node", async () => {
  const g = new Graph();
  const x = g.input("x", F64, [4]);
  const h = b.mul(x, 3); // interior, and read again below
  const y = b.tanh(h);
  customVjp([x], [y], ([dy]) => [b.mul(dy!, 7)]);
  const [dx] = grad(b.add(b.reduceSum(y, [0]), b.reduceSum(b.mul(h, h), [0])), [x]);
  g.output("dx", dx);
  const xs = f64([4], (i) => i / 4 - 0.3);
  const { dx: got } = await run(g, { x: xs });
  // exact: d/dx [tanh(3x) + 9x²] = 3(1 − tanh²(3x)) + 18x
  const want = Array.from(xs.data as Float64Array, (v) => 3 * (1 - Math.tanh(3 * v) ** 2) + 18 * v);
  assertAllClose(got, want, 1e-12, "dx with the interior value h used outside the region");
});

test("a region's rule gets only the cotangents its inputs need", () => {
  const g = new Graph();
  const x = g.input("x", F64, [3]);
  const c = g.initializer("c", Float64Array.from([1, 2, 3]), [3], F64); // frozen
  const y = b.mul(x, c);
  const seen: boolean[][] = [];
  customVjp([x, c], [y], ([dy], needs) => {
    seen.push(needs);
    return [needs[0] ? b.mul(dy!, c) : undefined, needs[1] ? b.mul(dy!, x) : undefined];
  });
  grad(b.reduceSum(y, [0]), [x]);
  assert.deepEqual(seen, [[true, false]], "needs: x yes, the frozen c no");
});
