/**
 * Activation checkpointing (src/ir/checkpoint.ts, src/autodiff/checkpoint.ts) and the chunked
 * causal-LM loss: gradients against finite differences and against the float64 PEFT LoRA
 * reference of the tiny Llama, and the backward pass reading a checkpointed layer's input only,
 * none of its interior activations.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { gradCheck } from "../src/runtime/grad-check.ts";
import * as b from "../src/ir/builder.ts";
import { checkpoint } from "../src/ir/checkpoint.ts";
import { rmsNorm, swiglu } from "../src/ir/functional.ts";
import type { Value } from "../src/ir/graph.ts";
import { Op } from "../src/ir/ops.ts";
import { loadAdapter } from "../src/adapters/format.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { Rng } from "../src/tensor/random.ts";
import { LM_FIXTURES, lmGolden } from "./lm-golden.ts";
import { maxRelDiff, modelRunner, outF32 } from "./helpers.ts";

const rng = new Rng(3);
const normal = (n: number) => Array.from({ length: n }, () => rng.normal());

/** Two pre-norm SwiGLU blocks with residuals (custom-gradient regions inside), each a checkpoint region. */
function blocks(x: Value, w: Value, leak: boolean): Value {
  let h = x;
  let extra: Value | undefined;
  for (let l = 0; l < 2; l++) {
    const input = h;
    const n = rmsNorm(h, b.slice(w, 0, l, l + 1), 1e-6);
    const gate = b.matmul(n, b.slice(w, 0, 2 + 4 * l, 6 + 4 * l));
    h = b.add(h, swiglu(gate, b.exp(b.mul(n, 0.5))));
    checkpoint([input], [h]);
    if (leak && l === 0) extra = gate;
  }
  // a second reader of an interior value makes its region fall back to keeping its activations
  return extra ? b.add(h, b.mul(extra, extra)) : h;
}

for (const leak of [false, true]) {
  test(`checkpointed blocks${leak ? " with an interior value read outside its region" : ""}: gradients equal finite differences (float64)`, async () => {
    const r = await gradCheck(
      (x, w) => blocks(x, w, leak),
      [
        { name: "x", dtype: "float64", shape: [3, 4], data: normal(12) },
        { name: "w", dtype: "float64", shape: [10, 4], data: normal(40).map((v) => 0.5 * v) },
      ],
    );
    assert.ok(r.ok, r.failures.join("; "));
  });
}

const name = "llama";

async function loraGrads(spec: { checkpointActivations?: boolean; lossChunk?: number }) {
  const model = loadModel(join(LM_FIXTURES, name));
  const { set } = loadAdapter(join(LM_FIXTURES, `${name}_lora`), modelContext(model));
  const base = lmGolden(`${name}_base_golden`);
  const hf = { input_ids: base.i64("input_ids"), attention_mask: base.i64("attention_mask") };
  const r = await modelRunner({ model, hf, adapter: set, trainable: "adapter+head", loss: true, grads: true, ...spec });
  try {
    const out = await r.run(hf, { labels: base.i64("labels") });
    return { out, trainable: r.built.trainable, outputs: [...r.built.graph.outputs.keys()] };
  } finally {
    r.dispose();
  }
}

test("tiny Llama, PEFT LoRA on all seven linear layers: checkpointed layers and a chunked loss give the reference gradients, and the plain run's to 1e-5", async (t) => {
  const { f32 } = lmGolden(`${name}_lora_golden`);
  const plain = await loraGrads({});
  // 5 positions a chunk: 12 positions make chunks of 5, 5 and 2
  for (const spec of [{ checkpointActivations: true }, { lossChunk: 5 }, { checkpointActivations: true, lossChunk: 5 }]) {
    const got = await loraGrads(spec);
    if (spec.lossChunk) assert.ok(!got.outputs.includes("logits"), "a chunked loss never builds the whole logits");
    const loss = outF32(got.out, "loss")[0];
    assert.ok(Math.abs(loss - f32("loss")[0]) / f32("loss")[0] < 1e-4, `${JSON.stringify(spec)}: loss ${loss} vs ${f32("loss")[0]}`);
    assert.ok(Math.abs(loss - outF32(plain.out, "loss")[0]) < 1e-5 * loss);
    let worst = 0;
    for (const k of got.trainable) {
      const ref = maxRelDiff(outF32(got.out, `grad.${k}`), f32(`grad.${k}`));
      const same = maxRelDiff(outF32(got.out, `grad.${k}`), outF32(plain.out, `grad.${k}`));
      assert.ok(ref < 1e-4, `${JSON.stringify(spec)} ${k}: ${ref} from the reference`);
      assert.ok(same < 1e-5, `${JSON.stringify(spec)} ${k}: ${same} from the run without checkpointing`);
      worst = Math.max(worst, same);
    }
    t.diagnostic(`${JSON.stringify(spec)}: worst relative difference to the plain gradients ${worst.toExponential(2)} over ${got.trainable.length} tensors`);
  }
});

test("tiny Llama, every weight trained (the LM head too, so its chunks are recomputed): a chunked loss with checkpointed layers gives the plain gradients to 1e-5", async () => {
  const model = loadModel(join(LM_FIXTURES, name));
  const base = lmGolden(`${name}_base_golden`);
  const hf = { input_ids: base.i64("input_ids"), attention_mask: base.i64("attention_mask") };
  const grads = async (spec: { checkpointActivations?: boolean; lossChunk?: number }) => {
    const r = await modelRunner({ model, hf, trainable: "all", loss: true, grads: true, ...spec });
    try {
      return { out: await r.run(hf, { labels: base.i64("labels") }), trainable: r.built.trainable };
    } finally {
      r.dispose();
    }
  };
  const plain = await grads({});
  const got = await grads({ checkpointActivations: true, lossChunk: 5 });
  assert.ok(got.trainable.includes("lm_head.weight"));
  for (const k of got.trainable) {
    const d = maxRelDiff(outF32(got.out, `grad.${k}`), outF32(plain.out, `grad.${k}`));
    assert.ok(d < 1e-5, `${k}: ${d} from the run without checkpointing`);
  }
});

/** Forward values of at least `size` elements that the backward pass reads (those it keeps alive). */
function keptActivations(spec: { checkpointActivations?: boolean; lossChunk?: number }, size: number): number {
  return keptValues(spec, size).length;
}

function keptValues(spec: { checkpointActivations?: boolean; lossChunk?: number }, size: number): Value[] {
  const model = loadModel(join(LM_FIXTURES, name));
  const { set } = loadAdapter(join(LM_FIXTURES, `${name}_lora`), modelContext(model));
  const common = { model, adapter: set, batch: 2, seqLen: 12, trainable: "adapter+head" as const, loss: true, ...spec };
  const forward = buildModelGraph(common).graph.nodes.length;
  const { graph } = buildModelGraph({ ...common, grads: true });
  const produced = new Set(graph.nodes.slice(0, forward).flatMap((n) => (n.op === Op.Constant ? [] : n.outputs)));
  const kept = new Set<Value>();
  for (const n of graph.nodes.slice(forward)) {
    for (const x of n.inputs) if (produced.has(x) && x.shape.reduce((a: number, d) => a * (d as number), 1) >= size) kept.add(x);
  }
  return [...kept];
}

test("tiny Llama: with checkpointed layers the backward pass reads each layer's input, none of its interior activations", () => {
  const model = loadModel(join(LM_FIXTURES, name));
  const L = model.config.numHiddenLayers;
  // [B, T, hidden] or larger
  const size = 2 * 12 * model.config.hiddenSize;
  const plain = keptActivations({}, size);
  const ckpt = keptActivations({ checkpointActivations: true }, size);
  // the layer inputs; the final norm's input and output and the log-probabilities of the loss
  assert.ok(ckpt <= L + 3, `${ckpt} activations kept with checkpointing (${L} layers)`);
  assert.ok(plain > 5 * L, `${plain} activations kept without checkpointing`);
  // a chunked loss keeps no log-probabilities
  const chunked = keptActivations({ checkpointActivations: true, lossChunk: 5 }, size);
  assert.ok(chunked <= L + 2, `${chunked} activations kept with checkpointing and a chunked loss`);
});

test("tiny Llama: SwiGLU keeps its gate, its up projection and its product for the backward pass, and recomputes σ(gate) and silu(gate)", () => {
  const model = loadModel(join(LM_FIXTURES, name));
  const { numHiddenLayers: L, intermediateSize: I } = model.config;
  const mlpWide = keptValues({}, 1).filter((v) => v.shape.at(-1) === I);
  assert.equal(mlpWide.length, 3 * L, `${mlpWide.length} [B, T, ${I}] activations kept over ${L} layers`);
  assert.deepEqual(new Set(mlpWide.map((v) => v.producer!.op)), new Set([Op.Add, Op.Mul]));
});

test("tiny Qwen2 (tied embedding): the LoRA step and the whole-sequence graphs hold the embedding once, as [1, V, d] (never pre-packed); generation's graph keeps [V, d]", () => {
  const model = loadModel(join(LM_FIXTURES, "qwen2"));
  const { set } = loadAdapter(join(LM_FIXTURES, "qwen2_lora"), modelContext(model));
  const { vocabSize: V, hiddenSize: d } = model.config;
  const embedding = (spec: { loss?: boolean; grads?: boolean; lastLogits?: boolean; past?: number }) => {
    const { graph } = buildModelGraph({ model, adapter: set, batch: 2, seqLen: 12, trainable: "adapter+head", ...spec });
    return [...graph.initializers.values()].filter((i) => i.value.name === "model.embed_tokens.weight").map((i) => i.value.shape.join(","));
  };
  assert.deepEqual(embedding({ loss: true, grads: true }), [`1,${V},${d}`]);
  assert.deepEqual(embedding({}), [`1,${V},${d}`]);
  assert.deepEqual(embedding({ lastLogits: true, past: 4 }), [`${V},${d}`]);
});
