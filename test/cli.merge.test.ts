/**
 * `tenslora merge`: the merged HF folder gives the unmerged model's logits (our runtime, 1e-5),
 * and `--onnx` writes onnx/model.onnx, which onnxruntime-node runs on its own (no project code)
 * with the same logits at any batch and sequence size (one export with free dims), with the
 * weights inline or in an external data file. Adapters: PEFT LoRA, and a TensLoRA adapter with a new labelled head.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { saveAdapter } from "../src/adapters/format.ts";
import { loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import { exportOnnx, mergedWeights } from "../src/experiments/merge.ts";
import { toBigInt64, toFloat32 } from "../src/io/dtype-convert.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { Rng } from "../src/tensor/random.ts";
import { assertOk, cliAsync } from "./cli-helpers.ts";
import { FIXTURES, VIT, robertaWithTokenizer, tempDir } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const golden = (name: string) => readSafetensors(join(FIXTURES, `${name}.safetensors`)).tensors;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Golden ViT pixels, rows repeated/cycled to `B` rows. */
function vitInputs(B: number): Record<string, HostTensor> {
  const e = golden("vit_base_golden").get("pixel_values")!;
  const src = toFloat32(e);
  const per = src.length / e.shape[0];
  const data = new Float32Array(B * per);
  for (let r = 0; r < B; r++) data.set(src.subarray((r % e.shape[0]) * per, ((r % e.shape[0]) + 1) * per), r * per);
  return { pixel_values: { dtype: "float32", shape: [B, ...e.shape.slice(1)], data } };
}

/** Golden RoBERTa rows cut or padded (with pad id 1, mask 0) to T tokens, cycled to B rows, with token types. */
function robertaInputs(B: number, T: number): Record<string, HostTensor> {
  const g = golden("roberta_base_golden");
  const ids = toBigInt64(g.get("input_ids")!);
  const mask = toBigInt64(g.get("attention_mask")!);
  const [B0, T0] = g.get("input_ids")!.shape;
  const out = { ids: new BigInt64Array(B * T).fill(1n), mask: new BigInt64Array(B * T), types: new BigInt64Array(B * T) };
  for (let r = 0; r < B; r++) {
    for (let t = 0; t < Math.min(T, T0); t++) {
      out.ids[r * T + t] = ids[(r % B0) * T0 + t];
      out.mask[r * T + t] = mask[(r % B0) * T0 + t];
      out.types[r * T + t] = out.mask[r * T + t] && t > T0 / 2 ? 1n : 0n;
    }
  }
  const t = (data: BigInt64Array): HostTensor => ({ dtype: "int64", shape: [B, T], data });
  return { input_ids: t(out.ids), attention_mask: t(out.mask), token_type_ids: t(out.types) };
}

/** Run model.onnx with onnxruntime-node directly: only the inputs the graph declares. */
async function ortLogits(dir: string, inputs: Record<string, HostTensor>): Promise<{ logits: Float32Array; names: string[] }> {
  const session = await ort.InferenceSession.create(join(dir, "onnx", "model.onnx"), { intraOpNumThreads: 1 });
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const t = inputs[name];
      assert.ok(t, `the ONNX graph asks for "${name}", which is not an HF input here`);
      feeds[name] = new ort.Tensor(t.dtype as "float32" | "int64", t.data as Float32Array, t.shape);
    }
    const out = await session.run(feeds);
    assert.deepEqual(session.outputNames, ["logits"]);
    return { logits: out.logits.data as Float32Array, names: [...session.inputNames] };
  } finally {
    await session.release();
  }
}

/** Random (non-zero) adapter tensors, so the update is not ΔW = 0. */
function randomise<T extends { tensors: Map<string, { data: Float32Array }> }>(set: T, seed: number, std = 0.2): T {
  const rng = new Rng(seed);
  for (const t of set.tensors.values()) t.data.set(rng.normalArray(t.data.length, std));
  return set;
}

test("merge of the PEFT LoRA ViT: HF folder and ONNX graph (run by onnxruntime-node alone) equal the unmerged model", async () => {
  const dir = tempDir();
  const out = join(dir, "merged");
  const r = await cliAsync(["merge", "--model", VIT, "--adapter", join(FIXTURES, "vit_lora"), "--out", out, "--onnx"]);
  assertOk(r, "merge --onnx");
  for (const f of ["config.json", "model.safetensors", "onnx/model.onnx"]) assert.ok(existsSync(join(out, f)), `${f} written`);
  assert.ok(!existsSync(join(out, "onnx/model.onnx_data")), "a small model keeps its weights inside model.onnx");

  const unmerged = loadTrainedModel(VIT, join(FIXTURES, "vit_lora"));
  const merged = loadTrainedModel(out); // a plain HF folder, no adapter
  for (const B of [2, 3]) {
    const inputs = vitInputs(B);
    const ref = (await runInference(unmerged, inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
    if (B === 2) assert.ok(maxAbsDiff(ref, toFloat32(golden("vit_lora_golden").get("logits")!)) < 1e-4, "the unmerged reference is HF's");
    const ours = (await runInference(merged, inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
    assert.ok(maxAbsDiff(ours, ref) < 1e-5, `B=${B}: merged folder differs by ${maxAbsDiff(ours, ref)}`);
    const onnx = await ortLogits(out, inputs);
    assert.deepEqual(onnx.names, ["pixel_values"]);
    assert.ok(maxAbsDiff(onnx.logits, ref) < 1e-5, `B=${B}: model.onnx differs by ${maxAbsDiff(onnx.logits, ref)}`);
  }
  // the merged weights really moved (the LoRA update is not zero) and only the adapted projections did
  const base = loadModel(VIT).weights;
  const mw = readSafetensors(join(out, "model.safetensors")).tensors;
  let changed = 0;
  for (const [k, t] of base) {
    const same = maxAbsDiff(toFloat32(mw.get(k)!), t.data) === 0;
    if (/attention\.attention\.(query|key|value)\.weight$/.test(k)) changed += same ? 0 : 1;
    else assert.ok(same, `${k} must not change`);
  }
  assert.equal(changed, 12, "all 12 q/k/v weights carry the update");
});

test("merge of a TensLoRA adapter with a new labelled head on RoBERTa: dynamic batch and sequence, external data", async () => {
  const dir = tempDir();
  const modelDir = robertaWithTokenizer(join(dir, "roberta"));
  const labels = ["neg", "neu", "pos", "other"];
  const model = loadModel(modelDir, { numLabels: labels.length, labels, seed: 3 });
  const { set } = createAdapter(model, { construction: "att_qkv_depth", ranks: [3, 2, 2, 2, 2], scaling: 2 });
  randomise(set, 11, 0.5);
  const adapterDir = join(dir, "adapter");
  // a trained-looking head (a fresh one is N(0, 0.02²): logits near 0 would make any comparison trivial)
  const rng = new Rng(5);
  const head = new Map(
    model.family.headParameters(model.config).map((k) => [k, { ...model.weights.get(k)!, data: rng.normalArray(model.weights.get(k)!.data.length, 0.3) }]),
  );
  saveAdapter(adapterDir, set, modelContext(model), head);
  // a labels.json as runs write it
  writeFileSync(join(adapterDir, "labels.json"), JSON.stringify({ id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])) }));

  const out = join(dir, "merged");
  const r = await cliAsync(["merge", "--model", modelDir, "--adapter", adapterDir, "--out", out, "--onnx", "--json"]);
  assertOk(r, "merge --onnx (TensLoRA)");
  const res = JSON.parse(r.stdout);
  assert.deepEqual(res.labels, labels);
  assert.equal(res.mergedProjections, 12);
  const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  assert.deepEqual(cfg.id2label, { 0: "neg", 1: "neu", 2: "pos", 3: "other" }, "config.json carries the head's labels");
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(modelDir, f)), `${f} copied`);

  const unmerged = loadTrainedModel(modelDir, adapterDir);
  assert.ok(unmerged.adapter);
  const merged = loadTrainedModel(out);
  assert.deepEqual(merged.labels, labels);
  // external data: the same graph with every weight in model.onnx_data
  const ext = join(dir, "external");
  exportOnnx({ ...unmerged.model, weights: mergedWeights(unmerged.model, unmerged.adapter) }, ext, { inlineLimitBytes: 0 });
  assert.ok(statSync(join(ext, "onnx/model.onnx_data")).size > statSync(join(ext, "onnx/model.onnx")).size, "weights live in model.onnx_data");

  for (const [B, T] of [
    [1, 7],
    [3, 19],
    [4, 16],
  ]) {
    const inputs = robertaInputs(B, T);
    const ref = (await runInference(unmerged, inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
    const ours = (await runInference(merged, inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
    assert.ok(maxAbsDiff(ours, ref) < 1e-5, `B=${B} T=${T}: merged folder differs by ${maxAbsDiff(ours, ref)}`);
    for (const where of [out, ext]) {
      const onnx = await ortLogits(where, inputs);
      assert.deepEqual(onnx.names, ["input_ids", "attention_mask", "token_type_ids"], "inputs by HF names; position ids computed inside");
      assert.ok(maxAbsDiff(onnx.logits, ref) < 1e-5, `B=${B} T=${T} ${where}: model.onnx differs by ${maxAbsDiff(onnx.logits, ref)}`);
    }
  }
  // the update is large enough to matter, so "equal" above is not trivially true
  const base = loadTrainedModel(modelDir, adapterDir);
  const noAdapter = (await runInference({ model: base.model }, robertaInputs(2, 12), { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
  const withAdapter = (await runInference(base, robertaInputs(2, 12), { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
  assert.ok(maxAbsDiff(noAdapter, withAdapter) > 0.05, `the adapter changes the logits (by ${maxAbsDiff(noAdapter, withAdapter)})`);
  assert.ok(Math.max(...Array.from(withAdapter, Math.abs)) > 0.5, "logits of order 1");
});
