/**
 * `quant-matmul`: ONNX Runtime's kernels for one frozen-weight product y = x·Ŵᵀ at a decoder's
 * projection shapes, by the row count M of x (1–16: a decoding step, one token a sequence; 512:
 * a training step's batch × sequence): float32 FusedMatMul; int8 MatMulNBits (bits 8, accuracy
 * level 0: float32 arithmetic); the same at accuracy level 4 (x rounded to int8 per block: not
 * dequantize-then-matmul, for reference); int8 block-wise DequantizeLinear-21 into a float32
 * temporary, then FusedMatMul (the scales multiplied by a 1 computed from x, as src/onnx/lower.ts
 * keeps the dequantization next to its product); int8 as two 4-bit MatMulNBits on the codes'
 * nibbles (`int8NibblePlane` in src/onnx/lower.ts); int4 MatMulNBits for reference. The models are built here node by
 * node, not by the lowering, so that every int8 kernel runs at every M: this measures the kernels
 * the lowering chooses between.
 *
 * Each model sums the products of `copies` distinct weights with the same x, so that the weights
 * of one run (--mib MiB of float32, 54 MiB of int8 at the default 192) overflow the 32 MiB L3
 * cache as a decoder's 30 layers do; each time is a run's over its copies. One session per
 * kernel and product, all in this process, run by run interleaved (runs under 0.1 s as bursts of 3
 * back-to-back runs) so that other processes' load hits them alike; ratios to float32 at the same M.
 *
 *   npm run bench -- quant-matmul [--shapes smollm2-135m,llama-3.2-1b] [--rows 1,4,16,64,512]
 *                                 [--runs 5] [--mib 192]
 */
import { loadavg } from "node:os";
import * as ortModule from "onnxruntime-node";
import { OPSET, type NodeProto, type TensorProto, node, onnx, tensorProto, valueInfo } from "../src/onnx/proto.ts";
import { int8NibblePlane } from "../src/onnx/lower.ts";
import { quantizeMatrix } from "../src/tensor/quantize.ts";
import { Rng } from "../src/tensor/random.ts";
import { burst, emitJson, interleave, median, ratio, table, threads, timeIt } from "./harness.ts";
import { decoderShape } from "./models.ts";

const ort = (ortModule as unknown as { default?: typeof ortModule }).default ?? ortModule;

const KERNELS = [
  "f32",
  "int8 MatMulNBits",
  "int8 MatMulNBits, int8 x",
  "int8 dequantize + FusedMatMul",
  "int8 nibbles: two int4 MatMulNBits",
  "int4 MatMulNBits",
] as const;
type Kernel = (typeof KERNELS)[number];
const BLOCK = 32;

/** One kernel's model: y = Σ_c x·Ŵ_cᵀ over the copies, x [m, K] with m free. */
function model(kernel: Kernel, weights: Float32Array[], n: number, k: number): Uint8Array {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const blocks = Math.ceil(k / BLOCK);
  const products = weights.map((w, c) => {
    const y = `y${c}`;
    if (kernel === "f32") {
      inits.push(tensorProto(`w${c}`, "float32", [n, k], w));
      nodes.push(node("FusedMatMul", ["x", `w${c}`], [y], { transA: 0, transB: 1, alpha: { float: 1 } }, "com.microsoft"));
      return y;
    }
    const bits = kernel === "int4 MatMulNBits" ? 4 : 8;
    const q = quantizeMatrix(w, n, k, bits, BLOCK);
    inits.push(tensorProto(`s${c}`, "float32", [n, blocks], q.scales));
    const nbits = (codes: string, scales: string, out: string, b: number, level: number, zeros: string[] = []) =>
      nodes.push(
        node("MatMulNBits", ["x", codes, scales, ...zeros], [out], { K: k, N: n, bits: b, block_size: BLOCK, accuracy_level: level }, "com.microsoft"),
      );
    if (kernel === "int8 nibbles: two int4 MatMulNBits") {
      inits.push(tensorProto(`h${c}`, "uint8", [n, blocks, BLOCK / 2], int8NibblePlane(q.codes, "high")));
      inits.push(tensorProto(`l${c}`, "uint8", [n, blocks, BLOCK / 2], int8NibblePlane(q.codes, "low")));
      inits.push(
        tensorProto(
          `t${c}`,
          "float32",
          [n, blocks],
          q.scales.map((v) => v * 16),
        ),
      );
      if (c === 0) inits.push(tensorProto("zero4", "uint8", [n, Math.ceil(blocks / 2)], new Uint8Array(n * Math.ceil(blocks / 2))));
      nbits(`h${c}`, `t${c}`, `yh${c}`, 4, 0);
      nbits(`l${c}`, `s${c}`, `yl${c}`, 4, 0, ["zero4"]);
      nodes.push(node("Add", [`yh${c}`, `yl${c}`], [y]));
      return y;
    }
    if (kernel !== "int8 dequantize + FusedMatMul") {
      inits.push(tensorProto(`c${c}`, "uint8", [n, blocks, (BLOCK * bits) / 8], q.codes));
      nbits(`c${c}`, `s${c}`, y, bits, kernel === "int8 MatMulNBits, int8 x" ? 4 : 0);
      return y;
    }
    inits.push(tensorProto(`c${c}`, "uint8", [n, blocks * BLOCK], q.codes));
    nodes.push(node("Mul", [`s${c}`, "one"], [`sx${c}`]));
    nodes.push(node("DequantizeLinear", [`c${c}`, `sx${c}`, "zero"], [`wq${c}`], { axis: 1, block_size: BLOCK }));
    const wk = blocks * BLOCK === k ? `wq${c}` : `wk${c}`;
    if (wk !== `wq${c}`) nodes.push(node("Slice", [`wq${c}`, "i0", "ik", "i1"], [wk]));
    nodes.push(node("FusedMatMul", ["x", wk], [y], { transA: 0, transB: 1, alpha: { float: 1 } }, "com.microsoft"));
    return y;
  });
  if (kernel === "int8 dequantize + FusedMatMul") {
    const i64 = (name: string, v: number[]) => inits.push(tensorProto(name, "int64", [v.length], BigInt64Array.from(v.map(BigInt))));
    i64("flat", [-1]);
    i64("i0", [0]);
    i64("i1", [1]);
    i64("ik", [k]);
    i64("scalar", []);
    inits.push(tensorProto("one1", "float32", [1], Float32Array.of(1)));
    inits.push(tensorProto("zero", "uint8", [n, blocks], new Uint8Array(n * blocks).fill(128)));
    nodes.unshift(
      node("Reshape", ["x", "flat"], ["xflat"]),
      node("Slice", ["xflat", "i0", "i0"], ["xnone"]),
      node("Concat", ["xnone", "one1"], ["onev"], { axis: 0 }),
      node("Reshape", ["onev", "scalar"], ["one"]),
    );
  }
  let sum = products[0];
  for (let c = 1; c < products.length; c++) {
    nodes.push(node("Add", [sum, products[c]], [`sum${c}`]));
    sum = `sum${c}`;
  }
  nodes.push(node("Identity", [sum], ["y"]));
  const graph = onnx.GraphProto.create({
    name: kernel,
    node: nodes,
    initializer: inits,
    input: [valueInfo("x", "float32", ["m", k])],
    output: [valueInfo("y", "float32", ["m", n])],
  });
  const m = onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [
      { domain: "", version: OPSET },
      { domain: "com.microsoft", version: 1 },
    ],
    graph,
  });
  return onnx.ModelProto.encode(m).finish();
}

/** The four linear-layer shapes [N, K] of a decoder: q and o, k and v, gate and up, down. */
function projections(raw: Record<string, unknown>): [string, number, number][] {
  const d = raw.hidden_size as number;
  const heads = raw.num_attention_heads as number;
  const kv = ((raw.num_key_value_heads as number) ?? heads) * ((raw.head_dim as number) ?? d / heads);
  const mlp = raw.intermediate_size as number;
  return [
    ["q, o", d, d],
    ["k, v", kv, d],
    ["gate, up", mlp, d],
    ["down", d, mlp],
  ];
}

export async function run(argv: string[]): Promise<void> {
  const opt = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : dflt;
  };
  const shapes = opt("--shapes", "smollm2-135m,llama-3.2-1b").split(",");
  const rowsList = opt("--rows", "1,4,16,64,512").split(",").map(Number);
  const runs = Number(opt("--runs", "5"));
  const mib = Number(opt("--mib", "192"));
  const rng = new Rng(7);
  const sessionOptions: ortModule.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads(),
    interOpNumThreads: 1,
    graphOptimizationLevel: "extended",
    executionProviders: ["cpu"],
    logSeverityLevel: 3,
    enableMemPattern: false,
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
  const loadBefore = loadavg();
  const rows: { shape: string; product: string; n: number; k: number; m: number; us: Record<Kernel, number> }[] = [];
  for (const shape of shapes) {
    for (const [product, n, k] of projections(decoderShape(shape))) {
      const copies = Math.max(1, Math.round((mib * 2 ** 20) / (4 * n * k)));
      const weights = Array.from({ length: copies }, () => Float32Array.from({ length: n * k }, () => rng.normal() * 0.02));
      const sessions = await Promise.all(KERNELS.map((kernel) => ort.InferenceSession.create(model(kernel, weights, n, k), sessionOptions)));
      for (const m of rowsList) {
        const x = new ort.Tensor(
          "float32",
          Float32Array.from({ length: m * k }, () => rng.normal()),
          [m, k],
        );
        // bursts for the short runs; a run of a tenth of a second or more is its own steady state
        const firstS = await Promise.all(sessions.map(async (s) => (await timeIt(() => s.run({ x }), { warmup: 1, runs: 1 })).median));
        const samples = await interleave(
          sessions.map((s, i) => (firstS[i] >= 0.1 ? () => s.run({ x }) : burst(() => s.run({ x })))),
          { warmup: 0, runs },
        );
        const us = Object.fromEntries(KERNELS.map((kernel, i) => [kernel, (1e6 * median(samples[i])) / copies])) as Record<Kernel, number>;
        rows.push({ shape, product, n, k, m, us });
        console.error(`${shape} ${product} [${n}, ${k}] × ${copies}, M = ${m}: ${KERNELS.map((kn) => `${kn} ${us[kn].toFixed(0)} µs`).join(", ")}`);
      }
      for (const s of sessions) await s.release();
    }
  }
  const loadAfter = loadavg();
  console.log(
    `ONNX Runtime ${ort.env.versions?.common ?? ""} CPU, ${threads()} threads; x [M, K] · Ŵᵀ, Ŵ [N, K]; µs a product (median of ${runs} interleaved bursts); ratio to float32 at the same M`,
  );
  console.log(`load average ${loadBefore.map((x) => x.toFixed(2)).join(" ")} before, ${loadAfter.map((x) => x.toFixed(2)).join(" ")} after`);
  table(
    ["shape", "product", "N × K", "M", "f32 µs", ...KERNELS.slice(1)],
    rows.map((r) => [r.shape, r.product, `${r.n} × ${r.k}`, String(r.m), r.us.f32, ...KERNELS.slice(1).map((kn) => ratio(r.us[kn], r.us.f32))]),
  );
  emitJson("quant-matmul", { threads: threads(), runs, mib, loadavg: { before: loadBefore, after: loadAfter }, rows });
}
