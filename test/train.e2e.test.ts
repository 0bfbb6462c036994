/**
 * End to end: the tiny fixture ViT (on synthetic PNGs in an image-folder layout) and RoBERTa (with
 * a hand-made tokenizer, on GLUE SST-2 style TSV files) trained for a few steps with every
 * construction, the linear probe and full fine-tuning. For each run: the loss goes down, exactly
 * the adapter and head parameters are trained (and each of them moves), the saved artifacts
 * reload to the training-time eval graph's logits and the run's own test metrics, and merging
 * the adapter into the weights changes nothing. One run goes through the real CLI, followed by
 * `eval`, `infer --images` and `merge --onnx` on what it saved.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { CONSTRUCTIONS, modeNames } from "../src/adapters/constructions.ts";
import { type EvalResult, type TrainedModel, evaluateTrained, loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import { mergedWeights } from "../src/experiments/merge.ts";
import { DEFAULTS, type RunConfig } from "../src/experiments/run-config.ts";
import { listCheckpoints } from "../src/train/checkpoint.ts";
import { METHODS, adapterFor, prepareData, runTraining } from "../src/experiments/run.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import type { LoadedModel } from "../src/models/load.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import { assertOk, cli } from "./cli-helpers.ts";
import { VIT, robertaWithTokenizer, tempDir, writeImageFolder, writeSst2 } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const dir = tempDir();
let images = "";
let roberta = "";
let sst2 = "";

before(async () => {
  images = join(dir, "images");
  await writeImageFolder(images, { classes: 2, perClass: 8, size: 32 }); // 12 train / 4 test
  roberta = robertaWithTokenizer(join(dir, "roberta"));
  sst2 = writeSst2(dir, 16, 8);
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

const ranksFor = (method: string) =>
  method === "lora"
    ? "2"
    : (CONSTRUCTIONS as readonly string[]).includes(method)
      ? modeNames(method as never)
          .map(() => 2)
          .join(",")
      : "";

function runConfig(model: string, data: string, method: string): RunConfig {
  return {
    ...DEFAULTS,
    model,
    data,
    construction: method,
    ranks: ranksFor(method),
    epochs: 3,
    batchSize: 4,
    lr: method === "full" ? 2e-3 : 1e-2,
    warmup: 0,
    seed: 0,
    threads: 1,
  };
}

const recordsOf = (run: string) =>
  readFileSync(join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

/** The weights a run trains, as the trainer sees them before step 1. */
async function initialState(cfg: RunConfig): Promise<{ model: LoadedModel; trained: Map<string, Float32Array>; adapterKeys: string[]; headKeys: string[] }> {
  const prepared = await prepareData(cfg, nodeRuntime, () => {});
  const model = await prepared.loadModel(cfg.seed);
  const { adapter } = adapterFor(model, cfg);
  const headKeys = model.family.headParameters(model.config);
  const trained = new Map<string, Float32Array>();
  for (const k of cfg.construction === "full" ? [...model.weights.keys()] : headKeys) trained.set(k, model.weights.get(k)!.data.slice());
  for (const [k, t] of adapter?.tensors ?? []) trained.set(k, t.data.slice());
  return { model, trained, adapterKeys: [...(adapter?.tensors.keys() ?? [])], headKeys };
}

/** Logits of the eval graph the trainer builds (trainable parameters fed as inputs) for the saved values. */
async function trainerEvalLogits(model: LoadedModel, tm: TrainedModel, method: string, inputs: Record<string, HostTensor>): Promise<Float32Array> {
  const lead = inputs.pixel_values ?? inputs.input_ids;
  const trainable = method === "head" ? "head" : method === "full" ? "all" : "adapter+head";
  const built = buildModelGraph({ model, adapter: tm.adapter, batch: lead.shape[0], seqLen: inputs.input_ids?.shape[1], trainable });
  const graph = await compile(built.graph, { threads: 1 });
  try {
    const feeds: Record<string, HostTensor> = model.family.feeds(model.config, inputs);
    for (const k of built.trainable) {
      const t = tm.adapter?.tensors.get(k) ?? tm.model.weights.get(k)!;
      feeds[k] = { dtype: "float32", shape: t.shape, data: t.data };
    }
    return (await graph.run(feeds)).logits.data as Float32Array;
  } finally {
    graph.dispose();
  }
}

async function checkRun(name: string, modelDir: string, data: string, method: string): Promise<void> {
  const cfg = runConfig(modelDir, data, method);
  const init = await initialState(cfg);
  const run = join(dir, `${name}-${method}`);
  const result = await runTraining(cfg, run, { runtime: nodeRuntime });
  const what = `${name}/${method}`;
  assert.equal(result.interrupted, false);

  // the loss decreases: mean of the last epoch below the mean of the first
  const train = recordsOf(run).filter((r) => r.type === "train");
  assert.equal(train.length, result.steps);
  const epochMean = (e: number) => {
    const xs = train.filter((r) => r.epoch === e).map((r) => r.loss);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  assert.ok(epochMean(cfg.epochs) < epochMean(1), `${what}: loss ${epochMean(1).toFixed(4)} → ${epochMean(cfg.epochs).toFixed(4)} did not decrease`);

  // exactly the adapter and head parameters are trained: the optimiser's vector and the checkpoint hold them and nothing else
  const expected = [...init.trained.values()].reduce((a, t) => a + t.length, 0);
  assert.equal(result.trainableParams, expected, `${what}: trainable parameter count`);
  const ckpt = readSafetensors(join(listCheckpoints(run)[0].dir, "state.safetensors")).tensors;
  assert.deepEqual(ckpt.get("params")!.shape, [expected], `${what}: the checkpoint holds only the trained parameters`);
  const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
  assert.equal(summary.trainableParams, expected);

  // what was saved: adapter + head, the head alone, or the whole model; every trained tensor moved
  const last = join(run, "last");
  const tm = loadTrainedModel(modelDir, last);
  assert.deepEqual(tm.labels, init.model.config.id2label, `${what}: the run's class names come back`);
  const files = readdirSync(last).sort();
  if (method === "head") assert.deepEqual(files, ["head.safetensors", "labels.json"]);
  else if (method === "full") assert.deepEqual(files, ["config.json", "model.safetensors"]);
  else {
    assert.deepEqual(files, ["adapter_config.json", "adapter_model.safetensors", "labels.json"]);
    const keys = [...readSafetensors(join(last, "adapter_model.safetensors")).tensors.keys()].sort();
    assert.deepEqual(keys, [...init.adapterKeys, ...init.headKeys.map((k) => `base_model.model.${k}`)].sort(), `${what}: saved tensors`);
  }
  const base = init.model.weights;
  for (const [k, before] of init.trained) {
    const after = tm.adapter?.tensors.get(k)?.data ?? tm.model.weights.get(k)!.data;
    const moved = maxAbsDiff(after, before) > 0;
    // full fine-tuning: the head and the adapted projections must move; other tensors may (they all get gradients)
    if (method !== "full" || /classifier|query\.weight/.test(k)) assert.ok(moved, `${what}: ${k} did not change`);
  }
  if (method !== "full") {
    for (const [k, t] of base) if (!init.trained.has(k)) assert.equal(maxAbsDiff(tm.model.weights.get(k)!.data, t.data), 0, `${what}: backbone ${k} untouched`);
  }

  // reload ≡ the trainer's eval graph, and the run's own final test metrics
  const evalResult = (await evaluateTrained(tm, {
    runtime: nodeRuntime,
    data,
    seed: cfg.seed,
    batchSize: cfg.batchSize,
    threads: 1,
    warn: () => {},
  })) as EvalResult;
  assert.deepEqual(evalResult.confusionMatrix, result.final!.confusionMatrix, `${what}: eval of the saved artifact = the run's final eval`);
  const probe = await prepareData(cfg, nodeRuntime, () => {});
  const batch = await probe.data.batch(
    "test",
    Int32Array.from({ length: Math.min(4, probe.data.size("test")) }, (_, i) => i),
    4,
  );
  const reloaded = (await runInference(tm, batch.inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
  const trainerView = await trainerEvalLogits(init.model, tm, method, batch.inputs);
  assert.ok(maxAbsDiff(reloaded, trainerView) < 1e-5, `${what}: reloaded logits differ from the eval graph's by ${maxAbsDiff(reloaded, trainerView)}`);

  // merge ≡ unmerged
  if (tm.adapter) {
    const merged = (
      await runInference({ model: { ...tm.model, weights: mergedWeights(tm.model, tm.adapter) } }, batch.inputs, { runtime: nodeRuntime, threads: 1 })
    ).logits.data as Float32Array;
    assert.ok(maxAbsDiff(merged, reloaded) < 1e-5, `${what}: merged logits differ by ${maxAbsDiff(merged, reloaded)}`);
    const noAdapter = (await runInference({ model: tm.model }, batch.inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
    assert.ok(maxAbsDiff(noAdapter, reloaded) > 1e-4, `${what}: the trained adapter changes the logits`);
  }
}

for (const method of METHODS) {
  test(`ViT, ${method}: loss down, only adapter/head trained, reload ≡ eval graph, merge ≡ unmerged`, async () => {
    await checkRun("vit", VIT, images, method);
  });
}

for (const method of METHODS) {
  test(`RoBERTa, ${method}: loss down, only adapter/head trained, reload ≡ eval graph, merge ≡ unmerged`, async () => {
    await checkRun("roberta", roberta, sst2, method);
  });
}

test("the CLI: train → eval → infer --images → merge --onnx on the saved adapter", async () => {
  const run = join(dir, "cli-run");
  const train = cli([
    "train",
    "--model",
    VIT,
    "--data",
    images,
    "--construction",
    "qkv_depth",
    "--ranks",
    "2,2,2,2",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--lr",
    "0.01",
    "--seed",
    "3",
    "--threads",
    "1",
    "--out",
    run,
    "--json",
  ]);
  assertOk(train, "train");
  const events = train.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const steps = events.filter((e) => e.type === "step");
  assert.ok(steps.length >= 4 && steps.length % 2 === 0, `2 epochs of whole batches: ${steps.length} step events`);
  assert.equal(steps.at(-1).step, steps.length);
  for (const f of ["config.json", "metrics.jsonl", "summary.json", "loss.svg", "loss.png", "eval.svg", "best/adapter_model.safetensors", "last/labels.json"]) {
    assert.ok(existsSync(join(run, f)), `${f} in the run folder`);
  }
  const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
  assert.equal(summary.steps, steps.length);
  assert.deepEqual(summary.ranks, [2, 2, 2, 2]);

  const ev = cli(["eval", "--model", VIT, "--adapter", join(run, "last"), "--data", images, "--json", "--threads", "1"]);
  assertOk(ev, "eval");
  const metrics = JSON.parse(ev.stdout);
  assert.equal(metrics.seed, 3, "eval takes the split seed from the run folder");
  assert.deepEqual(metrics.confusionMatrix, summary.final.confusionMatrix, "eval reproduces the run's final test metrics");
  assert.equal(metrics.accuracy, summary.final.accuracy);
  assert.deepEqual(metrics.classNames, ["class_a", "class_b"]);
  for (const k of ["macroF1", "binaryF1", "mcc", "perClassAccuracy"]) assert.ok(k in metrics, `eval reports ${k}`);
  // --split all scores every image of the folder once: its confusion matrix is the train split's plus the test split's
  const evalSplit = (split: string, json = true) =>
    cli(["eval", "--model", VIT, "--adapter", join(run, "last"), "--data", images, "--split", split, "--threads", "1", ...(json ? ["--json"] : [])]);
  const [all, trainSplit] = ["all", "train"].map((s) => {
    const r = evalSplit(s);
    assertOk(r, `eval --split ${s}`);
    return JSON.parse(r.stdout);
  });
  const files = readdirSync(images).reduce((n, c) => n + readdirSync(join(images, c)).length, 0);
  assert.deepEqual([all.split, all.numSamples, trainSplit.numSamples + metrics.numSamples], ["all", files, files]);
  assert.deepEqual(
    all.confusionMatrix,
    metrics.confusionMatrix.map((row: number[], i: number) => row.map((v, j) => v + trainSplit.confusionMatrix[i][j])),
  );
  assert.match(evalSplit("all", false).stdout, new RegExp(`^all split: ${files} examples, 2 classes$`, "m"));

  const png = join(images, "class_b", "0.png");
  const inf = cli(["infer", "--model", VIT, "--adapter", join(run, "last"), "--images", png, "--json", "--threads", "1"]);
  assertOk(inf, "infer --images");
  const line = JSON.parse(inf.stdout.trim());
  assert.ok(["class_a", "class_b"].includes(line.label), `labels come from the run: ${line.label}`);

  const merged = join(dir, "cli-merged");
  assertOk(cli(["merge", "--model", VIT, "--adapter", join(run, "last"), "--out", merged, "--onnx"]), "merge");
  assert.deepEqual(JSON.parse(readFileSync(join(merged, "config.json"), "utf8")).id2label, { 0: "class_a", 1: "class_b" });
  const tm = loadTrainedModel(VIT, join(run, "last"));
  const probe = await prepareData(runConfig(VIT, images, "qkv_depth"), nodeRuntime, () => {});
  const batch = await probe.data.batch("test", Int32Array.from([0, 1, 2]), 3);
  const ref = (await runInference(tm, batch.inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
  const session = await ort.InferenceSession.create(join(merged, "onnx", "model.onnx"));
  const px = batch.inputs.pixel_values;
  const out = await session.run({ pixel_values: new ort.Tensor("float32", px.data as Float32Array, px.shape) });
  await session.release();
  assert.ok(maxAbsDiff(out.logits.data as Float32Array, ref) < 1e-5, "merged ONNX ≡ trained adapter");
  assert.equal(line.probabilities.length, 2);
  assert.ok(Math.abs(line.probabilities[0].probability + line.probabilities[1].probability - 1) < 1e-9);
});
