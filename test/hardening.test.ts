/**
 * The findings of the hardening issue that need no child process, each against the real loaders:
 * configs that would allocate before failing, non-finite weights and logits, option ranges, text
 * longer than the position table, data that stalls or poisons a run (FIFO, truncated image,
 * decompression bomb, stray labels, an empty split), and messages that misled.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync, readFileSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ConfigError, DataError, FormatError, TensLoRAError } from "../src/errors.ts";
import { loadCheckpointTensors } from "../src/io/checkpoint.ts";
import { writeSafetensors } from "../src/io/safetensors.ts";
import { loadModel } from "../src/models/load.ts";
import { loadImageFolderSplit } from "../src/data/image-datasets.ts";
import { readTextTable } from "../src/data/text-datasets.ts";
import { readLines } from "../src/data/files.ts";
import { readLmJsonl } from "../src/data/lm-data.ts";
import { detectFormat, openDataset, positionLimit, taskDataFor } from "../src/experiments/datasets.ts";
import type { Split, TextDataset } from "../src/data/types.ts";
import { loadTrainedModel, refuseNonFiniteLogits } from "../src/experiments/infer.ts";
import { loadConfigFile } from "../src/experiments/config-file.ts";
import { DEFAULTS } from "../src/experiments/run-config.ts";
import { checkBatchFits, checkRunOptions, prepareData, trainConfig } from "../src/experiments/run.ts";
import { loadTrained, saveTrained } from "../src/train/artifacts.ts";
import { loadAdapter, saveAdapter } from "../src/adapters/format.ts";
import { mergeAdapter } from "../src/adapters/merge.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { exportAsLora } from "../src/experiments/export.ts";
import { checkCompareFolder, recordCompareFolder } from "../src/experiments/compare-folder.ts";
import { mergeToFolder } from "../src/experiments/merge.ts";
import { serveStudio } from "../studio/serve.ts";
import { rawGet } from "./raw-get.ts";
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
  const model = modelWith(VIT, "layers", { num_hidden_layers: 4000 });
  const t0 = performance.now();
  assert.throws(
    () => loadModel(model),
    (e: Error) => e instanceof ConfigError && /num_hidden_layers is 4000 but the weights hold 4 layers/.test(e.message),
  );
  assert.ok(performance.now() - t0 < 10_000);
  for (const layers of [1e6, 1e12])
    assert.throws(() => loadModel(modelWith(VIT, `layers-${layers}`, { num_hidden_layers: layers })), /num_hidden_layers" must be an integer ≤ 4096/);
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

test("non-finite adapters are refused by load, export and merge, naming the tensor; scaling is range-checked; an overflowing merge fails", async () => {
  const model = loadModel(VIT);
  const ctx = { ...modelContext(model), baseModel: VIT };
  const { set } = createAdapter(model, { construction: "qkv_depth", ranks: [2, 2, 2, 2], seed: 1 });
  const [key, first] = [...set.tensors][0];
  const poisoned = new Map(set.tensors);
  poisoned.set(key, { shape: first.shape, data: first.data.map((v, i) => (i === 3 ? Number.NaN : i === 5 ? Number.POSITIVE_INFINITY : v)) });
  const nan = join(dir, "nan-adapter");
  saveAdapter(nan, { ...set, tensors: poisoned }, ctx);
  const nonFinite = (e: Error) =>
    e instanceof TensLoRAError &&
    e.message.startsWith(`${join(nan, "adapter_model.safetensors")} holds non-finite values:`) &&
    e.message.includes(`"${key}" holds 2 non-finite values (the first, NaN, at index 3)`);
  assert.throws(() => loadAdapter(nan, modelContext(model)), nonFinite);
  assert.throws(() => exportAsLora(nan, join(dir, "nan-export")), nonFinite);
  await assert.rejects(mergeToFolder(VIT, nan, join(dir, "nan-merged")), nonFinite);
  assert.ok(!existsSync(join(dir, "nan-export")) && !existsSync(join(dir, "nan-merged")), "nothing written");

  // a scaling that overflows float32 is out of range, in a file or as a flag
  const huge = join(dir, "huge-scaling");
  saveAdapter(huge, set, ctx);
  const cfgPath = join(huge, "adapter_config.json");
  writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, "utf8")), scaling: 1e308 }));
  assert.throws(() => loadAdapter(huge, modelContext(model)), /scaling must be a number in \[-10000, 10000\], got 1e\+308/);
  assert.throws(() => checkRunOptions({ ...DEFAULTS, scaling: 1e308 }), /--scaling must be in \[-10000, 10000\]/);
  // finite factors whose update overflows float32 when folded in
  const big = new Map([...set.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data.map(() => 1e30) }]));
  assert.throws(() => mergeAdapter(model.weights, { ...set, tensors: big }), /folding the adapter into .*\.weight gives \d+ non-finite values/);
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

test("the studio server answers malformed and escaping paths with 400/404 and keeps serving", async () => {
  const site = join(dir, "site");
  mkdirSync(join(site, "sub"), { recursive: true });
  writeFileSync(join(site, "index.html"), "<p>studio</p>");
  writeFileSync(join(dir, "secret.txt"), "outside");
  const { server, url } = await serveStudio(site);
  try {
    for (const bad of ["/%", "/%E0%A4%A", "/a%00b"]) assert.equal((await rawGet(url, bad)).status, 400, bad);
    for (const outside of ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/sub", "/sub/"]) {
      const r = await rawGet(url, outside);
      assert.equal(r.status, 404, outside);
      assert.doesNotMatch(r.body, /outside/);
    }
    assert.deepEqual(await rawGet(url, "/"), { status: 200, body: "<p>studio</p>" }, "still serving");
  } finally {
    server.close();
  }
});

test("the temp folder of a killed process is removed by the next process that compiles a graph; live and foreign folders stay", () => {
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
  const stale = join(tmpdir(), `tenslora-${dead}-left`);
  const live = join(tmpdir(), `tenslora-${process.pid}-mine`);
  const foreign = join(tmpdir(), "tenslora-test-keep");
  for (const d of [stale, live, foreign]) {
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "weights.bin"), "x");
  }
  const child = spawnSync(process.execPath, ["--import", "tsx", "-e", 'import("./src/onnx/weight-store.ts").then((m) => new m.WeightStore().dispose())'], {
    encoding: "utf8",
  });
  assert.equal(child.status, 0, child.stderr);
  assert.ok(!existsSync(stale), "a dead process's folder is removed");
  assert.ok(existsSync(live) && existsSync(foreign), "a live process's folder and folders of other names stay");
  for (const d of [live, foreign]) rmSync(d, { recursive: true });
});

test("JSONL streams line by line in 1 MiB reads: lines across the read boundary, a split UTF-8 character, CRLF and no final newline", () => {
  const file = join(dir, "big.jsonl");
  // a line ending 1 byte before the boundary, then a "é" (2 bytes) straddling it
  const first = JSON.stringify({ text: "a".repeat((1 << 20) - 14) });
  const lines = [first, JSON.stringify({ text: "éé" }), JSON.stringify({ text: "x\r" }), JSON.stringify({ text: "last" })];
  writeFileSync(file, `${lines[0]}\n${lines[1]}\r\n${lines[2]}\n\n${lines[3]}`);
  assert.deepEqual([...readLines(file)], [lines[0], lines[1], lines[2], "", lines[3]]);
  assert.deepEqual(
    readLmJsonl(file).map((r) => (r.kind === "text" ? r.text.length : -1)),
    [(1 << 20) - 14, 2, 2, 4],
  );
  assert.throws(() => [...readLines(join(dir, "absent.jsonl"))], /absent\.jsonl cannot be read \(ENOENT/);
});

test("a 600 MB data file: the layout is told from its head, and a table past V8's string limit is a DataError naming it", () => {
  // sparse: 600 MB long, nothing on disk; reading it whole into one string throws a RangeError
  const jsonl = join(dir, "huge.jsonl");
  writeFileSync(jsonl, `${JSON.stringify({ tokens: ["a"], tags: ["X"] })}\n`);
  truncateSync(jsonl, 600e6);
  assert.equal(detectFormat(jsonl), "tagged");
  const csv = join(dir, "huge.csv");
  writeFileSync(csv, "text,label\n");
  truncateSync(csv, 600e6);
  assert.throws(
    () => readTextTable(csv, { text: "text", label: "label" }),
    (e: Error) => e instanceof DataError && /huge\.csv holds 600000000 bytes, more than the 536870888 .*; convert it to JSONL/.test(e.message),
  );
  rmSync(jsonl);
  rmSync(csv);
});

test("export and merge refuse a non-empty --out unless told to overwrite it; adapters record their model folder as an absolute path", async () => {
  const model = loadModel(VIT);
  const { set } = createAdapter(model, { construction: "qkv_depth", ranks: [2, 2, 2, 2], seed: 1 });
  const src = join(dir, "to-export");
  saveAdapter(src, set, { ...modelContext(model), baseModel: VIT });
  const recorded = JSON.parse(readFileSync(join(src, "adapter_config.json"), "utf8")).base_model_name_or_path;
  assert.equal(recorded, resolve(VIT), "not the relative path it was given");
  for (const name of ["export-out", "merge-out"]) {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, "notes.txt"), "mine");
  }
  assert.throws(() => exportAsLora(src, join(dir, "export-out")), /--out .*export-out already holds files \(notes\.txt\); pass a new folder, or --overwrite/);
  await assert.rejects(mergeToFolder(VIT, src, join(dir, "merge-out")), /merge-out already holds files \(notes\.txt\)/);
  assert.deepEqual(readdirSync(join(dir, "export-out")), ["notes.txt"], "refused before writing");
  exportAsLora(src, join(dir, "export-out"), { overwrite: true });
  assert.deepEqual(readdirSync(join(dir, "export-out")).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  await mergeToFolder(VIT, src, join(dir, "merge-out"), { overwrite: true });
  assert.ok(!readdirSync(join(dir, "merge-out")).includes("notes.txt"));
});

test("the default warm-up follows the task as --help says: 0 for images, 0.1 for text, classification and causal LM alike", () => {
  assert.deepEqual(
    (["image-classification", "text-classification", "token-classification", "causal-lm"] as const).map((t) => trainConfig(DEFAULTS, t).warmup),
    [0, 0.1, 0.1, 0.1],
  );
  assert.equal(trainConfig({ ...DEFAULTS, warmup: 0 }, "causal-lm").warmup, 0, "an explicit --warmup wins");
});

test("compare into a folder of another benchmark fails before pretraining anything; the same benchmark given another way matches", () => {
  const out = join(dir, "compare-folder");
  recordCompareFolder(out, DEFAULTS); // what `compare` records for the embedded MNIST ViT
  mkdirSync(join(out, "runs")); // beside its runs
  const cache = join(dir, "untouched-cache");
  const r = spawnSync(process.execPath, ["bin/tenslora.js", "compare", "--task", "causal-lm", "--out", out], {
    encoding: "utf8",
    env: { ...process.env, TENSLORA_CACHE: cache },
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /^tenslora: .*compare-folder holds a comparison of other settings \(task: default there, "causal-lm" here\); compare into a new --out/,
  );
  assert.ok(!existsSync(cache), "no embedded model was pretrained before the refusal");
  // a relative model path and its absolute form are one benchmark
  const byVit = { ...DEFAULTS, model: VIT, data: "mnist" };
  recordCompareFolder(out, byVit);
  checkCompareFolder(out, { ...byVit, model: resolve(VIT) });
  assert.throws(() => checkCompareFolder(out, { ...byVit, data: "other.csv" }), /data: "mnist" there, ".*other\.csv" here/);
  // runs on another base dtype are other runs; a record from before the base dtype was kept compared f32 bases
  const lm = { ...DEFAULTS, task: "causal-lm" };
  recordCompareFolder(out, { ...lm, baseDtype: "int4" });
  assert.throws(() => checkCompareFolder(out, { ...lm, baseDtype: "f16" }), /baseDtype: "int4" there, "f16" here/);
  const { baseDtype: _, ...older } = JSON.parse(readFileSync(join(out, "comparison.json"), "utf8"));
  writeFileSync(join(out, "comparison.json"), JSON.stringify(older));
  checkCompareFolder(out, lm);
  assert.throws(() => checkCompareFolder(out, { ...lm, baseDtype: "int8" }), /baseDtype: "f32" there, "int8" here/);
  // a record without runs (a comparison that failed before its first) binds nothing
  const failed = join(dir, "compare-failed");
  recordCompareFolder(failed, byVit);
  checkCompareFolder(failed, { ...byVit, data: "other.csv" });
});

test("one table without --eval-data is split 80/20, seeded and stratified by class, as the README's text classifier runs it", async () => {
  const csv = join(dir, "reviews.csv");
  const rows = Array.from({ length: 50 }, (_, i) => `"review ${i}",${i < 30 ? "good" : "bad"}`);
  writeFileSync(csv, `text,label\n${rows.join("\n")}\n`);
  const cols = { textColumn: "text", labelColumn: "label" };
  const open = async (seed: number) => {
    const d = await openDataset(csv, { ...cols, seed });
    assert.equal(d.kind, "text");
    return d.split as Split<TextDataset>;
  };
  const a = await open(3);
  const texts = (ds: TextDataset) => ds.items.map((x) => x.text);
  assert.deepEqual([a.train.items.length, a.test.items.length], [40, 10]);
  assert.deepEqual(
    a.test.items.map((x) => a.test.classNames[x.label]).sort(),
    [...Array(4).fill("bad"), ...Array(6).fill("good")],
    "each class keeps its share",
  );
  assert.equal(new Set([...texts(a.train), ...texts(a.test)]).size, 50, "disjoint, nothing lost");
  assert.deepEqual(texts((await open(3)).test), texts(a.test), "the same seed, the same split");
  assert.notDeepEqual(texts((await open(4)).test), texts(a.test));
});
