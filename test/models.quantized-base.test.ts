/**
 * A quantized base on the tiny Llama and Qwen2 fixtures with their PEFT LoRA adapters:
 * (1) every quantized linear layer is dequantize-then-matmul: logits, loss and every adapter
 * gradient equal those of the float32 model whose linear weights are replaced by their
 * dequantized values, to float32 rounding; (2) against the float32 base itself they differ by
 * the quantization error, stated here per dtype; (3) the block codes and the float16 bits
 * round-trip their formats; (4) ONNX Runtime keeps an f16 weight in float16 (no float32 copy
 * folded at load).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import * as b from "../src/ir/builder.ts";
import { Graph } from "../src/ir/graph.ts";
import { exportModel } from "../src/onnx/export.ts";
import { compile } from "../src/runtime/session.ts";
import { compileWeb } from "../src/runtime/session-web.ts";
import { onnx } from "../src/onnx/proto.ts";
import { loadAdapter } from "../src/adapters/format.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { type BaseDType, floatWeights, parseBaseDType, withBaseDType } from "../src/models/quantize-base.ts";
import { Op } from "../src/ir/ops.ts";
import { dequantizeMatrix, float16Matrix, quantizeMatrix } from "../src/tensor/quantize.ts";
import { Rng } from "../src/tensor/random.ts";
import { ConfigError } from "../src/errors.ts";
import { maxRelDiff, modelRunner, outF32, randomizeAdapter } from "./helpers.ts";
import { LM_FIXTURES, lmGolden } from "./lm-golden.ts";
import * as R from "./reference.ts";
import { tempDir } from "./make-data.ts";

/**
 * The quantization error against the float32 base, per dtype: ‖Δg‖/‖g‖ over every adapter
 * gradient and the relative loss difference. Measured on these fixtures: f16 0.07–0.11 % and
 * < 0.005 %; int8 2.0–2.5 % and < 0.05 %; int4 37–40 % and < 1.2 % (the weights' own errors
 * are 0.02 %, 0.5 % and 8.5 %; a random 2-layer model with width 48–64 passes them on to the
 * gradients amplified).
 */
const VS_F32: Record<Exclude<BaseDType, "f32">, { grad: number; loss: number }> = {
  f16: { grad: 0.005, loss: 2e-4 },
  int8: { grad: 0.05, loss: 0.002 },
  int4: { grad: 0.6, loss: 0.03 },
};

async function lossAndGrads(model: Parameters<typeof modelRunner>[0]["model"], name: string, set: ReturnType<typeof loadAdapter>["set"]) {
  const base = lmGolden(`${name}_base_golden`);
  const hf = { input_ids: base.i64("input_ids"), attention_mask: base.i64("attention_mask") };
  const r = await modelRunner({ model, hf, adapter: set, trainable: "adapter+head", loss: true, grads: true });
  try {
    const quantOps = r.built.graph.nodes.filter((n) => n.op === Op.QuantMatMul).map((n) => (n.params as { transB: boolean }).transB);
    const out = await r.run(hf, { labels: base.i64("labels") });
    const grads = new Map([...set.tensors.keys()].map((k) => [k, outF32(out, `grad.${k}`).slice()]));
    return { logits: outF32(out, "logits").slice(), loss: outF32(out, "loss")[0], grads, quantOps };
  } finally {
    r.dispose();
  }
}

for (const name of ["llama", "qwen2"] as const) {
  for (const dtype of ["f16", "int8", "int4"] as const) {
    test(`${name} ${dtype} base: LoRA loss and gradients are those of the dequantized weights, and near the float32 base's`, async (t) => {
      const model = loadModel(join(LM_FIXTURES, name));
      // PEFT's adapter has B = 0 trained a few steps; a random one makes every gradient path non-trivial
      const set = randomizeAdapter(loadAdapter(join(LM_FIXTURES, `${name}_lora`), modelContext(model)).set, 3, 0.1);
      const q = withBaseDType(model, dtype);
      const sites = model.family.linearSites(model.config).length;
      const ours = await lossAndGrads(q, name, set);
      // backward: all but the first layer's q, k, v, whose input gradient would reach only the frozen embedding
      assert.deepEqual(
        [ours.quantOps.filter((tb) => tb).length, ours.quantOps.filter((tb) => !tb).length],
        [sites, sites - 3],
        "QuantMatMul nodes forward and backward",
      );
      const deq = await lossAndGrads({ ...model, weights: floatWeights(q) }, name, set);
      assert.equal(deq.quantOps.length, 0);
      const exact = Math.max(maxRelDiff(ours.logits, deq.logits), ...[...ours.grads].map(([k, g]) => maxRelDiff(g, deq.grads.get(k)!)));
      assert.ok(exact < 1e-4, `against dequantize-then-matmul: relative difference ${exact}`);
      const f32 = await lossAndGrads(model, name, set);
      // ‖g − g_f32‖ / ‖g_f32‖ over all adapter gradients together: how far the update direction moves
      let [num, den] = [0, 0];
      for (const [k, g] of ours.grads) {
        const want = f32.grads.get(k)!;
        for (let i = 0; i < g.length; i++) [num, den] = [num + (g[i] - want[i]) ** 2, den + want[i] ** 2];
      }
      const rel = Math.sqrt(num / den);
      const dLoss = Math.abs(ours.loss - f32.loss) / f32.loss;
      t.diagnostic(
        `vs dequantized f32: ${exact.toExponential(2)}; vs f32 base: loss ${ours.loss.toFixed(5)} vs ${f32.loss.toFixed(5)}, relative gradient error ${rel.toExponential(2)}`,
      );
      assert.ok(rel < VS_F32[dtype].grad, `against the float32 base: relative gradient error ${rel} ≥ ${VS_F32[dtype].grad}`);
      assert.ok(dLoss < VS_F32[dtype].loss, `against the float32 base: relative loss difference ${dLoss} ≥ ${VS_F32[dtype].loss}`);
    });
  }
}

test("quantizeMatrix writes MatMulNBits' block format: the reference decoding gives dequantizeMatrix, within half a step of W or clipped", () => {
  const rng = new Rng(5);
  const [rows, cols] = [3, 40];
  const w = Float32Array.from({ length: rows * cols }, () => rng.normal());
  for (const bits of [4, 8] as const) {
    const q = quantizeMatrix(w, rows, cols, bits);
    const blocks = Math.ceil(cols / q.block);
    const ref = R.dequantizeBlocks(R.tensor([rows, blocks, (q.block * bits) / 8], q.codes), R.tensor([rows, blocks], q.scales), bits, q.block, cols);
    const ours = dequantizeMatrix(q);
    assert.ok(maxRelDiff(ours, ref.data) < 1e-7, `int${bits}: our decoding differs from the reference`);
    for (let i = 0; i < w.length; i++) {
      const scale = Math.abs(q.scales[Math.floor(i / cols) * blocks + Math.floor((i % cols) / q.block)]);
      // int4 maps the block's extreme to −8 steps, so the other sign stops at +7 steps
      const clipped = Math.abs(w[i]) - ((1 << (bits - 1)) - 1) * scale;
      assert.ok(Math.abs(ours[i] - w[i]) <= Math.max(scale / 2, clipped) + 1e-6, `int${bits}[${i}]: ${ours[i]} vs ${w[i]} (step ${scale})`);
    }
  }
});

test("float16Matrix rounds each weight to the nearest float16: the standard's decoding of its bits is dequantizeMatrix, within half a unit in the last place", () => {
  const rng = new Rng(6);
  const [rows, cols] = [3, 40];
  const w = Float32Array.from({ length: rows * cols }, () => rng.normal() * 0.05);
  w[0] = 65504; // the largest finite half, kept
  w[1] = 1e-7; // a subnormal half: the absolute step there is 2^-24
  const q = float16Matrix(w, rows, cols);
  const ours = dequantizeMatrix(q);
  assert.ok(maxRelDiff(ours, R.halfBits(R.tensor([rows, cols], q.codes)).data) === 0, "our decoding differs from the standard's");
  // 11 significant bits: a normal value moves by at most 2^-11 of itself, a subnormal by 2^-25
  w.forEach((v, i) => assert.ok(Math.abs(ours[i] - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25), `[${i}]: ${ours[i]} vs ${v}`));
  // from 65520 on, float16 rounds to infinity: refused, naming the value and the dtypes that hold it
  w[2] = -70000;
  assert.throws(
    () => float16Matrix(w, rows, cols),
    (e: Error) => e instanceof ConfigError && /-70000 is beyond float16's range .*int8 or f32/.test(e.message),
  );
});

test("x · Ŵᵀ at 8 bits reads the codes' nibbles with two 4-bit MatMulNBits at up to 16 rows or a free row count, and dequantizes above", () => {
  const [n, k] = [8, 64];
  const q = quantizeMatrix(
    Float32Array.from({ length: n * k }, (_, i) => Math.sin(i)),
    n,
    k,
    8,
  );
  const kernels = (xShape: (number | string)[]) => {
    const g = new Graph();
    const x = g.input("x", "float32", xShape);
    const codes = g.initializer("w.codes", q.codes, [n, k / 32, 32], "uint8");
    const scales = g.initializer("w.scales", q.scales, [n, k / 32]);
    g.output("y", b.quantMatmul(x, { codes, scales }, { bits: 8, block: 32, k, transB: true }));
    const nodes = onnx.ModelProto.decode(exportModel(g)).graph!.node!;
    return nodes.flatMap((nd) =>
      ["MatMulNBits", "DequantizeLinear"].includes(nd.opType!) ? [`${nd.opType}:${nd.attribute!.find((a) => a.name === "bits")?.i ?? ""}`] : [],
    );
  };
  const nibbles = ["MatMulNBits:4", "MatMulNBits:4"];
  assert.deepEqual(kernels([1, 1, k]), nibbles);
  assert.deepEqual(kernels([4, 4, k]), nibbles);
  assert.deepEqual(kernels(["batch", "seq", k]), nibbles);
  assert.deepEqual(kernels([1, 17, k]), ["DequantizeLinear:"]);
});

test("the int8 nibble products run on onnxruntime-web's WebAssembly build as on onnxruntime-node: x · Ŵᵀ to float32 rounding, a padded block included", async () => {
  const [n, k] = [24, 80];
  const rng = new Rng(9);
  const q = quantizeMatrix(
    Float32Array.from({ length: n * k }, () => rng.normal() * 0.02),
    n,
    k,
    8,
  );
  const g = new Graph();
  const x = g.input("x", "float32", ["batch", "seq", k]);
  const codes = g.initializer("w.codes", q.codes, [n, 3, 32], "uint8");
  const scales = g.initializer("w.scales", q.scales, [n, 3]);
  g.output("y", b.quantMatmul(x, { codes, scales }, { bits: 8, block: 32, k, transB: true }));
  const xs = Float32Array.from({ length: 2 * k }, () => rng.normal());
  const want = R.matmul(R.tensor([1, 2, k], xs), R.dequantizeBlocks(R.tensor([n, 3, 32], q.codes), R.tensor([n, 3], q.scales), 8, 32, k), { transB: true });
  for (const session of [await compile(g, { threads: 1 }), await compileWeb(g, "wasm")]) {
    try {
      const y = (await session.run({ x: { dtype: "float32", shape: [1, 2, k], data: xs } })).y.data as Float32Array;
      assert.ok(maxRelDiff(y, want.data) < 1e-5, `relative difference ${maxRelDiff(y, want.data)}`);
    } finally {
      session.dispose();
    }
  }
});

test("an f16 weight stays float16 in ONNX Runtime's optimized graph, where a Cast of the initializer alone is folded to float32", async () => {
  const [n, k] = [256, 128];
  const rng = new Rng(7);
  const half = float16Matrix(
    Float32Array.from({ length: n * k }, () => rng.normal()),
    n,
    k,
  );
  const optimized = async (cast: boolean) => {
    const g = new Graph();
    const x = g.input("x", "float32", [4, k]);
    const w = g.initializer("w.codes", half.codes, [n, k], "float16");
    g.output("y", cast ? b.matmul(x, b.cast(w, "float32"), { transB: true }) : b.quantMatmul(x, { codes: w }, { bits: 16, k, transB: true }));
    const path = join(tempDir("tenslora-f16-fold-"), "optimized.onnx");
    const session = await ort.InferenceSession.create(exportModel(g), { graphOptimizationLevel: "extended", optimizedModelFilePath: path });
    await session.release();
    return onnx.ModelProto.decode(readFileSync(path))
      .graph!.initializer!.filter((t) => t.dims!.length === 2)
      .map((t) => onnx.TensorProto.DataType[t.dataType!]);
  };
  // the control: the pitfall is real, a Cast of the initializer becomes a float32 initializer at load
  assert.deepEqual(await optimized(true), ["FLOAT"]);
  // QuantMatMul's float16 lowering: the weight stays float16; its float32 copy is made per product
  assert.deepEqual(await optimized(false), ["FLOAT16"]);
});

test("base dtypes outside f32, f16, int8, int4 and encoders with a quantized base are refused in one line", () => {
  assert.throws(
    () => parseBaseDType("int3"),
    (e: Error) => e instanceof ConfigError && /f32, f16, int8, int4/.test(e.message),
  );
  const vit = loadModel("test/fixtures/hf-tiny/vit");
  assert.throws(() => withBaseDType(vit, "int4"), /decoder models/);
});
