/**
 * `compare --lrs`: each learning rate is an arm that trains at that rate (read back from each
 * run's own metrics.jsonl), the baselines keep the comparison's, and the default arm's settings
 * are those of a comparison without --lrs, so a folder of finished runs is reused by both.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type CompareOptions, compare } from "../src/experiments/compare.ts";
import { DEFAULTS, type RunConfig } from "../src/experiments/run-config.ts";
import { prepareData, trainConfig } from "../src/experiments/run.ts";
import { nodeRuntime } from "../src/runtime/session.ts";
import { tempDir, VIT, writeImageFolder } from "./make-data.ts";

test("compare --lrs: an arm per rate, trained at it; the default arm's runs are a plain comparison's", async () => {
  const dir = tempDir();
  const images = join(dir, "images");
  await writeImageFolder(images, { classes: 2, perClass: 8, size: 32 });
  const cfg: RunConfig = { ...DEFAULTS, model: VIT, data: images, epochs: 1, batchSize: 4, lr: 1e-2, warmup: 0, threads: 1 };
  const prepared = await prepareData(cfg, nodeRuntime, () => {});
  const probe = await prepared.loadModel(0);
  const out = join(dir, "cmp");
  const opts: CompareOptions = {
    runtime: nodeRuntime,
    loadModel: prepared.loadModel,
    data: prepared.data,
    methods: ["lora", "head"],
    factorizations: ["tucker"],
    headLayouts: ["head_major"],
    coreLrScales: [1],
    rankModes: ["solver"],
    budgets: [{ kind: "iso-lora", rank: 1 }],
    rankSlack: 0.01,
    seeds: [0],
    config: trainConfig(cfg, probe.family.task),
    fullLr: 2e-3,
    outDir: out,
  };
  const res = await compare({ ...opts, lrs: [1e-2, 3e-4] });
  assert.deepEqual(
    res.rows.map((r) => `${r.budget}:${r.arm}`),
    ["r1:lora", "r1:lora+lr-0.0003", ":head"],
  );
  const peakLr = (arm: string, budget: string) =>
    Math.max(
      ...readFileSync(join(out, "runs", budget, `${arm}-seed0`, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((r) => r.type === "train")
        .map((r) => r.lr),
    );
  assert.equal(peakLr("lora", "r1"), 1e-2);
  assert.equal(peakLr("lora+lr-0.0003", "r1"), 3e-4);
  assert.equal(peakLr("head", ""), 1e-2);
  // the rate variant is paired against its default sibling in the pooled rows
  assert.deepEqual(
    res.pooled.map((p) => p.tag),
    ["lr-0.0003"],
  );

  // without --lrs the same folder's default-rate runs are finished runs of this comparison
  const again = await compare({ ...opts, methods: ["lora", "head"] });
  // as summary.json holds it (a reused run is read back from there): equal, step times included, so not retrained
  const saved = (r: { runs: { arm: string }[] }, arm: string) => JSON.parse(JSON.stringify(r.runs.find((x) => x.arm === arm)));
  for (const arm of ["lora", "head"]) assert.deepEqual(saved(again, arm), saved(res, arm), `${arm} reused, not retrained`);
});
