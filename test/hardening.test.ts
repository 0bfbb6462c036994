/**
 * The findings of the hardening issue that need no child process, each against the real loaders:
 * configs that would allocate before failing, non-finite weights and logits, option ranges, text
 * longer than the position table, data that stalls or poisons a run (FIFO, truncated image,
 * decompression bomb, stray labels, an empty split), and messages that misled.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError, DataError, FormatError } from "../src/errors.ts";
import { loadCheckpointTensors } from "../src/io/checkpoint.ts";
import { writeSafetensors } from "../src/io/safetensors.ts";
import { loadModel } from "../src/models/load.ts";
import { loadImageFolderSplit } from "../src/data/image-datasets.ts";
import { readTextTable } from "../src/data/text-datasets.ts";
import { positionLimit, taskDataFor } from "../src/experiments/datasets.ts";
import { loadTrainedModel, refuseNonFiniteLogits } from "../src/experiments/infer.ts";
import { loadConfigFile } from "../src/experiments/config-file.ts";
import { DEFAULTS } from "../src/experiments/run-config.ts";
import { checkBatchFits, checkRunOptions, prepareData } from "../src/experiments/run.ts";
import { loadTrained, saveTrained } from "../src/train/artifacts.ts";
import { ROBERTA, VIT, pngClaiming, robertaWithTokenizer, tempDir, writeImageFolder } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const dir = tempDir();

/** A copy of a fixture model folder with config.json fields replaced. */
function modelWith(src: string, name: string, config: Record<string, unknown>): string {
  const out = join(dir, name);
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(out, f));
  const raw = JSON.parse(readFileSync(join(src, "config.json"), "utf8"));
  writeFileSync(join(out, "config.json"), JSON.stringify({ ...raw, ...config }));
  return out;
}

/** Rewrite a model folder's weights through `edit` (key → float32 data, in place). */
function editWeights(model: string, edit: (tensors: Map<string, { shape: number[]; data: Float32Array }>) => void): void {
  const tensors = new Map([...loadCheckpointTensors(model)].map(([k, t]) => [k, { shape: t.shape, data: t.data.slice() }]));
  edit(tensors);
  writeSafetensors(
    join(model, "model.safetensors"),
    Object.fromEntries([...tensors].map(([k, t]) => [k, { dtype: "F32" as const, shape: t.shape, data: t.data }])),
  );
}

test("num_hidden_layers 1000000 over 4 stored layers fails at once naming both numbers (no out-of-memory abort)", () => {
  const model = modelWith(VIT, "layers", { num_hidden_layers: 1_000_000 });
  const t0 = performance.now();
  assert.throws(
    () => loadModel(model),
    (e: Error) => e instanceof ConfigError && /num_hidden_layers is 1000000 but the weights hold 4 layers/.test(e.message),
  );
  assert.ok(performance.now() - t0 < 10_000);
  assert.throws(() => loadModel(modelWith(VIT, "layers-huge", { num_hidden_layers: 1e12 })), /num_hidden_layers" must be an integer ≤ 16777216/);
});

test("layer_norm_eps and dropout probabilities are range-checked in config.json", () => {
  assert.throws(
    () => loadModel(modelWith(VIT, "eps", { layer_norm_eps: -1 })),
    (e: Error) => e instanceof FormatError && /"layer_norm_eps" must be a number in \(0, 1\], but found -1/.test(e.message),
  );
  assert.throws(() => loadModel(modelWith(ROBERTA, "drop", { hidden_dropout_prob: 2 })), /"hidden_dropout_prob" must be a number in \[0, 1\)/);
});

test("a NaN in the model's weights is an error at load naming the tensor; NaN logits are refused", () => {
  const model = modelWith(VIT, "nan", {});
  editWeights(model, (t) => (t.get("vit.encoder.layer.1.output.dense.weight")!.data[5] = Number.NaN));
  assert.throws(
    () => loadModel(model),
    (e: Error) =>
      e instanceof FormatError && /"vit\.encoder\.layer\.1\.output\.dense\.weight" holds 1 non-finite value \(the first, NaN, at index 5\)/.test(e.message),
  );
  assert.throws(() => refuseNonFiniteLogits(Float32Array.of(0.1, Number.NaN, 2), "m"), /logits with 1 non-finite value/);
  refuseNonFiniteLogits(Float32Array.of(0.1, -3, 2), "m");
});

test("a trained head holding NaN is refused when loaded (eval and infer used to report 62.5 % and NaN%)", () => {
  const model = loadModel(VIT, { numLabels: 2, labels: ["a", "b"] });
  const head = new Map(
    model.family.headParameters(model.config).map((k) => [k, { shape: model.weights.get(k)!.shape, data: model.weights.get(k)!.data.map(() => Number.NaN) }]),
  );
  const out = join(dir, "nan-head");
  saveTrained(out, model, { weights: head });
  assert.throws(
    () => loadTrained(out, model),
    (e: Error) => e instanceof FormatError && /non-finite/.test(e.message),
  );
});

test("a model folder without its classifier loads with a random head, and says so", () => {
  const model = modelWith(VIT, "headless", {});
  editWeights(model, (t) => {
    for (const k of [...t.keys()]) if (k.startsWith("classifier.")) t.delete(k);
  });
  assert.equal(loadTrainedModel(model).randomHead, true);
  assert.equal(loadTrainedModel(VIT).randomHead, false);
});

test("option ranges: --dropout in [0, 1), --threads ≥ 1, --batch-size within memory (with the estimate)", () => {
  const cfg = { ...DEFAULTS };
  for (const dropout of [1, 2, -0.1]) assert.throws(() => checkRunOptions({ ...cfg, dropout }), /--dropout must be in \[0, 1\)/);
  assert.throws(() => checkRunOptions({ ...cfg, threads: -3 }), /--threads must be an integer ≥ 1/);
  assert.throws(() => checkRunOptions({ ...cfg, maxLength: 0 }), /--max-length/);
  assert.throws(() => checkRunOptions({ ...cfg, lossChunk: 2.5 }), /--loss-chunk must be a whole number of positions/);
  checkRunOptions({ ...cfg, dropout: 0.5, threads: 2 });
  const model = loadModel(VIT);
  assert.throws(() => checkBatchFits(model, 17, 1e8), /--batch-size 100000000 needs about [\d.]+ GiB of activations .* but the machine has [\d.]+ GiB/);
  checkBatchFits(model, 17, 64);
});

test("text is truncated at the model's position table, whatever --max-length says", () => {
  const model = loadModel(robertaWithTokenizer(join(dir, "roberta")));
  const limit = positionLimit(model);
  assert.equal(limit, 40 - 1 - 1, "RoBERTa: max_position_embeddings less pad_token_id + 1");
  const long = Array.from({ length: 300 }, (_, i) => ["good", "bad", "film", "plot"][i % 4]).join(" ");
  const ds = {
    kind: "text" as const,
    items: [
      { text: long, label: 0 },
      { text: long, label: 1 },
    ],
    classNames: ["a", "b"],
  };
  const data = taskDataFor(model, { kind: "text", split: { train: ds, test: ds } }, { maxLength: 512 });
  assert.equal(data.seqLen, limit);
});

test("a FIFO named x.png, a truncated PNG and a 60000×60000 bomb are skipped up front with reasons; loading does not hang", async () => {
  const root = join(dir, "images");
  await writeImageFolder(root, { classes: 2, perClass: 6, size: 16 });
  assert.equal(spawnSync("mkfifo", [join(root, "class_a", "fifo.png")]).status, 0);
  const cut = join(root, "class_b", "truncated.png");
  copyFileSync(join(root, "class_b", "0.png"), cut);
  truncateSync(cut, Math.floor(readFileSync(cut).length / 2));
  writeFileSync(join(root, "class_b", "bomb.png"), pngClaiming(60_000, 60_000));
  const warnings: string[] = [];
  const t0 = performance.now();
  const split = await loadImageFolderSplit(root, { seed: 0, warn: (w) => warnings.push(w) });
  assert.ok(performance.now() - t0 < 20_000);
  const skipped = new Map([...split.train.skipped, ...split.test.skipped].map((s) => [s.path.split("/").pop(), s.reason]));
  assert.match(skipped.get("fifo.png") ?? "", /not a regular file \(a FIFO\)/);
  assert.ok(skipped.has("truncated.png"), `truncated image skipped: ${[...skipped.keys()]}`);
  assert.match(skipped.get("bomb.png") ?? "", /pixel limit/);
  assert.equal(split.train.items.length + split.test.items.length, 12);
  assert.ok(
    warnings.some((w) => /3 unreadable/.test(w)),
    warnings.join(" | "),
  );
});

test("integer labels must be contiguous class indices: a stray 7 among 0/1, or 1000000000, is an error naming it", () => {
  const rows = (labels: number[]) => {
    const path = join(dir, `labels-${labels.join("-")}.jsonl`);
    writeFileSync(path, labels.map((y, i) => JSON.stringify({ t: `text ${i}`, y })).join("\n"));
    return path;
  };
  assert.throws(
    () => readTextTable(rows([0, 1, 0, 7]), { text: "t", label: "y" }),
    (e: Error) => e instanceof DataError && /labels are 0, 1, 7 \(the largest, 7, at .*:4\), so 5 of the indices below 8 never occur/.test(e.message),
  );
  const t0 = performance.now();
  assert.throws(() => readTextTable(rows([0, 1, 1_000_000_000]), { text: "t", label: "y" }), /999999998 of the indices/);
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(readTextTable(rows([0, 2, 1]), { text: "t", label: "y" }).classNames.length, 3);
});

test("one image per class: the empty test split is an error before training, naming the split", async () => {
  const root = join(dir, "one-per-class");
  await writeImageFolder(root, { classes: 2, perClass: 1, size: 16 });
  await assert.rejects(
    prepareData({ ...DEFAULTS, model: VIT, data: root }, nodeRuntime, () => {}),
    (e: Error) => e instanceof DataError && /the test split of .* is empty \(2 train and 0 test examples\)/.test(e.message),
  );
});

test("--config /missing.json names the file without speaking of a HuggingFace model", () => {
  assert.throws(
    () => loadConfigFile("/missing.json"),
    (e: Error) => /run config \/missing\.json cannot be read \(ENOENT\); check the path$/.test(e.message) && !/HuggingFace/.test(e.message),
  );
});
