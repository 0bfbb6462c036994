/**
 * Training through the general adapter layer on the tiny ViT: `--target-modules all-linear` with
 * LoRA, qkv_depth Tucker and qkv_depth tensor-train, and `--preset lorta`, each lower the loss;
 * the trained qkv_depth adapter exported to PEFT LoRA gives the same logits through inference
 * (1e-5 relative).
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exportAsLora } from "../src/experiments/export.ts";
import { loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import { DEFAULTS, type RunConfig } from "../src/experiments/run-config.ts";
import { prepareData, runTraining } from "../src/experiments/run.ts";
import { maxRelDiff } from "./helpers.ts";
import { VIT, tempDir, writeImageFolder } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const dir = tempDir();
let images = "";

before(async () => {
  images = join(dir, "images");
  await writeImageFolder(images, { classes: 2, perClass: 8, size: 32 });
});

const RUNS: [string, Partial<RunConfig>][] = [
  ["lora-all-linear", { construction: "lora", ranks: "2", targetModules: "all-linear" }],
  ["tucker-all-linear", { construction: "qkv_depth", ranks: "2", targetModules: "all-linear" }],
  ["tt-all-linear", { construction: "qkv_depth", ranks: "2", factorization: "tt", targetModules: "all-linear" }],
  ["lorta", { preset: "lorta", ranks: "3" }],
];

for (const [name, over] of RUNS) {
  test(`train ${name}: the loss decreases`, async () => {
    const cfg: RunConfig = { ...DEFAULTS, model: VIT, data: images, epochs: 3, batchSize: 4, lr: 1e-2, warmup: 0, seed: 0, threads: 1, ...over };
    const run = join(dir, name);
    const result = await runTraining(cfg, run, { runtime: nodeRuntime });
    assert.equal(result.interrupted, false);
    const train = readFileSync(join(run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === "train");
    const mean = (e: number) => {
      const xs = train.filter((r) => r.epoch === e).map((r) => r.loss);
      return xs.reduce((a: number, b: number) => a + b, 0) / xs.length;
    };
    assert.ok(mean(3) < mean(1), `${name}: loss ${mean(1)} → ${mean(3)} did not decrease`);
    const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
    if (over.targetModules === "all-linear") assert.equal(summary.groups.length, 3, `${name}: q/k/v/o, intermediate and output groups`);
    if (over.preset) assert.deepEqual([summary.preset, summary.construction], ["lorta", "att_qkv_depth"]);
  });
}

test("the trained qkv_depth adapter exported to LoRA gives the same logits through inference", async () => {
  const last = join(dir, "tucker-all-linear", "last");
  const out = join(dir, "exported");
  exportAsLora(last, out, { model: VIT });
  const cfg: RunConfig = { ...DEFAULTS, model: VIT, data: images, batchSize: 4, seed: 0 };
  const probe = await prepareData(cfg, nodeRuntime, () => {});
  const n = Math.min(4, probe.data.size("test"));
  const batch = await probe.data.batch(
    "test",
    Int32Array.from({ length: n }, (_, i) => i),
    n,
  );
  const logits = async (d: string) =>
    (await runInference(loadTrainedModel(VIT, d), batch.inputs, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
  const [a, b] = [await logits(last), await logits(out)];
  assert.ok(maxRelDiff(b, a) < 1e-5, `exported logits differ by ${maxRelDiff(b, a)} (relative)`);
  assert.deepEqual(loadTrainedModel(VIT, out).labels, loadTrainedModel(VIT, last).labels);
});
