/**
 * Symbolic dims end to end: one graph with named dims (batch, sequence, past) exported once runs
 * in ONNX Runtime at sizes it was never built at, including an empty past. Shape inference
 * carries the names (sums for a Concat, products for a merged axis), Reshape/Expand targets that
 * need a size only known at run time are computed from the inputs' shapes, and Arange / Less /
 * Size build a causal mask of run-time length. Checked against plain loops.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as b from "../src/ir/builder.ts";
import { addDims, mulDims } from "../src/ir/dtype-shape.ts";
import { Graph } from "../src/ir/graph.ts";
import { exportModel } from "../src/onnx/export.ts";
import { onnx } from "../src/onnx/proto.ts";
import { compile } from "../src/runtime/session.ts";

const [B, T, P] = ["batch", "seq", "past"];

function build(): Graph {
  const g = new Graph();
  const x = g.input("x", "float32", [B, T, 8]);
  const past = g.input("past", "float32", [B, 2, P, 4]);
  const heads = b.transpose(b.reshape(x, [B, T, 2, 4]), [0, 2, 1, 3]); // [B, 2, T, 4]
  const present = b.concat([past, heads], 2); // [B, 2, P+T, 4]
  g.output("present", present);
  // a merged axis and back: [B, 2·T, 4] → [B, T, 8] through the heads
  const merged = b.reshape(heads, [B, mulDims(2, T), 4]);
  g.output("roundtrip", b.reshape(b.transpose(b.reshape(merged, [B, 2, T, 4]), [0, 2, 1, 3]), [B, T, 8]));
  // query t (cache position P + t) sees keys s < P + t + 1
  const S = present.shape[2];
  const keys = b.reshape(b.arange(present, 2), [1, S]);
  const limits = b.reshape(b.add(b.arange(x, 1), b.add(b.size(past, 2), 1)), [T, 1]);
  g.output("causal", b.expand(b.reshape(b.cast(b.less(keys, limits), "float32"), [1, T, S]), [B, T, S]));
  return g;
}

test("shape inference carries named dims: sums, products, run-time lengths", () => {
  const g = build();
  assert.deepEqual(g.outputs.get("present")!.shape, [B, 2, addDims(P, T), 4]);
  assert.equal(addDims(P, T), "past+seq");
  assert.equal(mulDims(2, T), "2*seq");
  assert.deepEqual(g.outputs.get("causal")!.shape, [B, T, "past+seq"]);
  const proto = onnx.ModelProto.decode(exportModel(g));
  const dims = (v: { type?: unknown }) =>
    (v.type as { tensorType: { shape: { dim: { dimParam?: string; dimValue?: unknown }[] } } }).tensorType.shape.dim.map(
      (d) => d.dimParam || Number(d.dimValue),
    );
  assert.deepEqual(dims(proto.graph!.input![1]), [B, 2, P, 4], "inputs keep their dim_params");
  assert.deepEqual(dims(proto.graph!.output![0]), [B, 2, "past+seq", 4]);
});

test("one export runs at [1, 7] with no past and at [3, 19] with 5 past positions", async () => {
  const session = await compile(build(), { threads: 1 });
  try {
    for (const [nb, nt, np] of [
      [1, 7, 0],
      [3, 19, 5],
    ]) {
      const x = Float32Array.from({ length: nb * nt * 8 }, (_, i) => Math.sin(i));
      const past = Float32Array.from({ length: nb * 2 * np * 4 }, (_, i) => Math.cos(i));
      const out = await session.run({ x: { dtype: "float32", shape: [nb, nt, 8], data: x }, past: { dtype: "float32", shape: [nb, 2, np, 4], data: past } });
      const S = np + nt;
      assert.deepEqual(out.present.shape, [nb, 2, S, 4]);
      const present = out.present.data as Float32Array;
      for (let r = 0; r < nb; r++)
        for (let h = 0; h < 2; h++)
          for (let s = 0; s < S; s++)
            for (let e = 0; e < 4; e++) {
              const want = s < np ? past[((r * 2 + h) * np + s) * 4 + e] : x[(r * nt + (s - np)) * 8 + h * 4 + e];
              assert.equal(present[((r * 2 + h) * S + s) * 4 + e], want, `present[${r},${h},${s},${e}]`);
            }
      assert.deepEqual(Array.from(out.roundtrip.data as Float32Array), Array.from(x), "reshape through 2*seq and back");
      assert.deepEqual(out.causal.shape, [nb, nt, S]);
      const causal = out.causal.data as Float32Array;
      for (let r = 0; r < nb; r++)
        for (let t = 0; t < nt; t++) for (let s = 0; s < S; s++) assert.equal(causal[(r * nt + t) * S + s], s <= np + t ? 1 : 0, `causal[${r},${t},${s}]`);
    }
  } finally {
    session.dispose();
  }
});
