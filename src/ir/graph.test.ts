import { test } from "node:test";
import assert from "node:assert/strict";
import { ShapeError } from "../errors.ts";
import * as b from "./builder.ts";
import { Graph, type Value, typecheck } from "./graph.ts";
import { Op } from "./ops.ts";

function tiny(opts: { alpha?: number; rows?: number; outName?: string; scale?: number; weights?: Float32Array } = {}): Graph {
  const g = new Graph();
  const x = g.input("x", "float32", [opts.rows ?? 2, 3]);
  const w = g.initializer("w", opts.weights ?? new Float32Array(12), [3, 4]);
  const y = b.mul(b.tanh(b.matmul(x, w, { alpha: opts.alpha ?? 1 })), opts.scale ?? 0.5);
  g.output(opts.outName ?? "y", y);
  return g;
}

test("toString lists inputs, weights, one node a line in ANF, then outputs", () => {
  const g = new Graph();
  const x = g.input("x", "float32", ["batch", 3]);
  const w = g.initializer("w", new Float32Array(12), [3, 4]);
  const h = b.matmul(x, w, { transB: false, alpha: 0.5 });
  const { y, mean } = b.layerNormParts(h, g.input("s", "float32", [4]), g.input("c", "float32", [4]), 1e-5);
  g.output("y", b.tanh(y));
  g.output("mean", mean);
  assert.equal(
    g.toString(),
    [
      "input x:float32[batch,3]",
      "input s:float32[4]",
      "input c:float32[4]",
      "const w:float32[3,4]",
      "v2:float32[batch,4] = MatMul{transA=false transB=false alpha=0.5}(x, w)",
      "v5:float32[batch,4], v6:float32[batch,1], v7:float32[batch,1] = LayerNorm{eps=0.00001}(v2, s, c)",
      "v8:float32[batch,4] = Tanh(v5)",
      "output y = v8",
      "output mean = v6",
    ].join("\n"),
  );
});

test("hash() is stable across identical constructions and sensitive to ops, params, shapes, names and constants", () => {
  const base = tiny().hash();
  assert.match(base, /^[0-9a-f]{16}$/);
  assert.equal(tiny().hash(), base, "same construction, same hash");
  assert.equal(tiny().hash(), tiny().hash());
  const variants: [string, Graph][] = [
    ["a param", tiny({ alpha: 2 })],
    ["a shape", tiny({ rows: 5 })],
    ["an output name", tiny({ outName: "z" })],
    ["a scalar constant", tiny({ scale: 0.25 })],
  ];
  for (const [what, g] of variants) assert.notEqual(g.hash(), base, `changing ${what} changes the hash`);
  assert.equal(new Set(variants.map(([, g]) => g.hash())).size, variants.length);
  // weights are data, not structure: a session compiled for one set serves another
  assert.equal(tiny({ weights: new Float32Array(12).fill(3) }).hash(), base);
  // an extra node changes it
  const g = tiny();
  const x = g.inputs[0];
  b.neg(x);
  assert.notEqual(g.hash(), base);
});

test("typecheck passes a well-formed graph and catches a node whose recorded output type was tampered with", () => {
  const g = tiny();
  typecheck(g);
  const mm = g.nodes.find((n) => n.op === Op.MatMul)!;
  const out = mm.outputs[0] as unknown as { shape: (number | string)[] };
  const saved = out.shape;
  out.shape = [2, 5];
  assert.throws(() => typecheck(g), /^Error: internal: MatMul: output 0 recorded as v\d+:float32\[2,5\] but inferred float32\[2,4\]/);
  out.shape = saved;
  typecheck(g);
  const tanh = g.nodes.find((n) => n.op === Op.Tanh)!;
  (tanh.outputs[0] as unknown as { dtype: string }).dtype = "float64";
  assert.throws(() => typecheck(g), /internal: Tanh: output 0 recorded as .*float64.* but inferred float32\[2,4\]/);
});

test("shape inference errors name the offending shapes", () => {
  const g = new Graph();
  const v = (name: string, shape: (number | string)[], dtype: "float32" | "int64" = "float32"): Value => g.input(name, dtype, shape);
  const a23 = v("a", [2, 3]);
  const b45 = v("b", [4, 5]);
  const c24 = v("c", [2, 4]);
  const cases: [string, () => unknown, RegExp][] = [
    ["MatMul inner dims", () => b.matmul(a23, b45), /MatMul: inner dims differ \(3 vs 4\) for \[2,3\] · \[4,5\]/],
    ["MatMul transposed", () => b.matmul(a23, b45, { transA: true }), /MatMul: inner dims differ \(2 vs 4\) for \[2,3\]ᵀ · \[4,5\]/],
    ["MatMul rank 1", () => b.matmul(v("r", [3]), b45), /MatMul needs rank ≥ 2 operands, got \[3\] and \[4,5\]/],
    ["MatMul batch", () => b.matmul(v("p", [2, 2, 3]), v("q", [3, 3, 4])), /MatMul batch: shapes \[2\] and \[3\] do not broadcast/],
    ["Concat", () => b.concat([a23, c24], 0), /Concat on axis 0: \[2,3\] vs \[2,4\]/],
    ["Concat rank", () => b.concat([a23, v("r3", [2, 3, 1])], 1), /Concat on axis 1: \[2,3\] vs \[2,3,1\]/],
    ["Reshape count", () => b.reshape(a23, [4, 2]), /Reshape: \[2,3\] \(6 elements\) cannot become \[4,2\] \(8\)/],
    ["Reshape -1", () => b.reshape(a23, [4, -1]), /Reshape: \[2,3\] cannot become \[4,-1\]/],
    ["Reshape two -1", () => b.reshape(a23, [-1, -1]), /at most one -1 in \[-1,-1\]/],
    ["Transpose duplicate", () => b.transpose(a23, [0, 0]), /Transpose: perm \[0,0\] is not a permutation of 0..1 for \[2,3\]/],
    ["Transpose rank", () => b.transpose(a23, [0, 1, 2]), /perm \[0,1,2\] is not a permutation of 0..1 for \[2,3\]/],
    ["broadcast", () => b.add(a23, v("d", [4])), /Add: shapes \[2,3\] and \[4\] do not broadcast \(dim 1: 3 vs 4\)/],
    ["Slice", () => b.slice(a23, 1, 2, 5), /Slice: \[2, 5\) must lie in \[0, 3\] on axis 1 of \[2,3\]/],
    ["axis", () => b.softmax(a23, 2), /axis 2 is out of range \[-2, 1\]/],
    ["LayerNorm", () => b.layerNormParts(a23, v("s", [4]), v("t", [3]), 1e-5), /LayerNorm: scale\/bias must be \[3\] for input \[2,3\], got \[4\]/],
    ["Einsum", () => b.einsum("ij,jk->ik", a23, b45), /Einsum "ij,jk->ik": index j is 3 and 4/],
    ["SoftmaxCrossEntropy ignoreIndex", () => b.softmaxCrossEntropy(a23, v("l", [2], "int64"), 1), /ignoreIndex 1 must lie outside the classes \[0, 3\)/],
  ];
  for (const [what, f, re] of cases) {
    assert.throws(f, (e: unknown) => e instanceof ShapeError && re.test(e.message), `${what}: expected a ShapeError matching ${re}`);
  }
  // nothing was appended by the failed binds
  assert.equal(g.nodes.length, 0);
});

test("graph bookkeeping: duplicate names, outputs from other graphs, initializer sizes", () => {
  const g = new Graph();
  const x = g.input("x", "float32", [2]);
  assert.throws(() => g.input("x", "float32", [2]), /name "x" is used twice/);
  assert.throws(() => g.initializer("w", new Float32Array(5), [2, 3]), /5 elements do not fill shape \[2,3\] \(6\)/);
  g.output("y", b.neg(x));
  assert.throws(() => g.output("y", x), /output "y" is already defined/);
  const other = new Graph();
  assert.throws(() => other.output("z", x), /internal: output "z" belongs to another graph/);
  assert.throws(() => b.add(x, other.input("u", "float32", [2])), /internal: Add: input .* belongs to another graph/);
});
