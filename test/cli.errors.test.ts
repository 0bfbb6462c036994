/**
 * Bad input through the real CLI: each mistake gives one clear `tenslora: …` line naming the
 * offending value, exit code 1 and no stack trace; an unreadable image is skipped with a warning
 * naming it and counted in the run summary, and the run goes on.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../src/io/safetensors.ts";
import { type CliResult, STACK_LINE, assertOk, assertUserError, cliAsync } from "./cli-helpers.ts";
import { FIXTURES, ROBERTA, VIT, robertaWithTokenizer, tempDir, writeImageFolder, writeSst2 } from "./make-data.ts";

const dir = tempDir();
let images = "";
let roberta = "";

before(async () => {
  images = join(dir, "images");
  await writeImageFolder(images, { classes: 2, perClass: 6, size: 32 });
  roberta = robertaWithTokenizer(join(dir, "roberta"));
});

const quick = ["--epochs", "1", "--batch-size", "4", "--threads", "1"];
const both = (a: string[], b: string[]) => Promise.all([cliAsync(a), cliAsync(b)]);

test("an unreadable image is skipped with a warning naming it, counted in summary.json; the run finishes", async () => {
  const data = join(dir, "broken-images");
  await writeImageFolder(data, { classes: 2, perClass: 6, size: 32 });
  const bad = join(data, "class_a", "corrupt.png");
  writeFileSync(bad, "this is not a PNG");
  const run = join(dir, "run-broken");
  const r = await cliAsync(["train", "--model", VIT, "--data", data, "--construction", "lora", "--ranks", "2", ...quick, "--out", run, "--json"]);
  assertOk(r, "train with one unreadable image");
  const messages = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === "message")
    .map((e) => e.message as string);
  const warning = messages.find((m) => m.startsWith("warning: Skipped 1 unreadable image"));
  assert.ok(warning, `a warning counts the skipped file: ${messages.join(" | ")}`);
  assert.ok(warning.includes(bad), "the warning names the file");
  const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
  assert.equal(summary.skippedFiles, 1);
  assert.deepEqual(summary.skipped, [bad]);
  assert.doesNotMatch(r.stderr, STACK_LINE);
});

test("GLUE TSV: a malformed row and a label out of range name the file and line", async () => {
  const malformed = writeSst2(join(dir, "malformed"));
  const lines = readFileSync(join(malformed, "train.tsv"), "utf8").split("\n");
  lines[3] = "a film\twith a tab\t1"; // 3 columns
  writeFileSync(join(malformed, "train.tsv"), lines.join("\n"));
  const outOfRange = writeSst2(join(dir, "out-of-range"));
  const dev = readFileSync(join(outOfRange, "dev.tsv"), "utf8").split("\n");
  dev[2] = dev[2].replace(/\t[01]$/, "\t2");
  writeFileSync(join(outOfRange, "dev.tsv"), dev.join("\n"));

  const args = (data: string, out: string) => [
    "train",
    "--model",
    roberta,
    "--data",
    data,
    "--construction",
    "lora",
    "--ranks",
    "2",
    ...quick,
    "--out",
    join(dir, out),
  ];
  const [a, b] = await both(args(malformed, "run-malformed"), args(outOfRange, "run-range"));
  assertUserError(a, new RegExp(`2 tab-separated columns; ${join(malformed, "train.tsv")}:4 has 3`), "malformed row");
  assertUserError(b, new RegExp(`labels must be integers in \\[0, 2\\); ${join(outOfRange, "dev.tsv")}:3 has "2"`), "label out of range");
});

test("--ranks with the wrong count, an unknown construction, a missing --data", async () => {
  const train = (...extra: string[]) => ["train", "--model", VIT, ...quick, "--out", join(dir, "run-x"), ...extra];
  const [ranks, loraRanks] = await both(
    train("--data", images, "--construction", "qkv_depth", "--ranks", "2,2"),
    train("--data", images, "--construction", "lora", "--ranks", "4,4"),
  );
  assertUserError(ranks, /"qkv_depth" has 4 modes \(in, out, qkv, depth\).*got 2 \[2, 2\]/, "--ranks 2,2 for qkv_depth");
  assertUserError(loraRanks, /"lora" takes one rank r, got 2 ranks \[4, 4\]/, "--ranks 4,4 for lora");
  const [unknown, noData] = await both(train("--data", images, "--construction", "tucker_everything"), train());
  assertUserError(unknown, /unknown construction "tucker_everything"; valid: lora, att, .*head, full/, "unknown construction");
  assertUserError(noData, /--model needs --data/, "train without --data");
  const [evalNoData, badRanks] = await both(["eval", "--model", VIT, "--adapter", join(FIXTURES, "vit_lora")], train("--data", images, "--ranks", "8,x"));
  assertUserError(evalNoData, /eval needs --data/, "eval without --data");
  assertUserError(badRanks, /--ranks takes positive integers.*"8,x"/, "--ranks 8,x");
});

test("an adapter, head or model from another model is refused by infer, eval and merge", async () => {
  const inputs = join(FIXTURES, "roberta_base_golden.safetensors");
  // a full model folder and a head from the ViT, offered to RoBERTa
  const headDir = join(dir, "vit-head");
  mkdirSync(headDir, { recursive: true });
  writeSafetensors(join(headDir, "head.safetensors"), {
    "classifier.weight": { dtype: "F32", shape: [5, 64], data: new Float32Array(320) },
    "classifier.bias": { dtype: "F32", shape: [5], data: new Float32Array(5) },
  });
  const results: [string, CliResult, RegExp][] = [];
  const [lora, merge] = await both(
    ["infer", "--model", ROBERTA, "--adapter", join(FIXTURES, "vit_lora"), "--inputs", inputs, "--output", join(dir, "o.safetensors")],
    ["merge", "--model", ROBERTA, "--adapter", join(FIXTURES, "vit_lora"), "--out", join(dir, "merged-wrong")],
  );
  results.push([
    "infer: PEFT LoRA of the ViT on RoBERTa",
    lora,
    /vit_lora\/adapter_model\.safetensors does not fit this model[\s\S]*missing "base_model\.model\.roberta\.encoder\.layer\.0\.attention\.self\.(key|query|value)\.lora_A\.weight"/,
  ]);
  results.push(["merge: PEFT LoRA of the ViT on RoBERTa", merge, /does not fit this model/]);
  const [head, full] = await both(
    ["eval", "--model", ROBERTA, "--adapter", headDir, "--data", writeSst2(join(dir, "sst-for-head"))],
    ["infer", "--model", ROBERTA, "--adapter", VIT, "--inputs", inputs, "--output", join(dir, "o2.safetensors")],
  );
  results.push([
    "eval: a ViT head on RoBERTa",
    head,
    /head\.safetensors: "classifier\.(weight|bias)" \[5(,64)?\] does not fit the model \(expected no such parameter\)/,
  ]);
  results.push([
    "infer: the ViT model folder as RoBERTa's trained weights",
    full,
    /model\.safetensors does not fit the model in .*roberta[\s\S]*unexpected "vit\./,
  ]);
  for (const [what, r, pattern] of results) assertUserError(r, pattern, what);
});

test("infer: inputs that do not fit the model are named before anything runs", async () => {
  const bad = join(dir, "bad-ids.safetensors");
  writeSafetensors(bad, {
    input_ids: { dtype: "I64", shape: [1, 4], data: BigInt64Array.from([0n, 150n, 5n, 2n]) },
    attention_mask: { dtype: "I64", shape: [1, 4], data: BigInt64Array.from([1n, 1n, 1n, 1n]) },
  });
  const [ids, missing] = await both(
    ["infer", "--model", ROBERTA, "--inputs", bad, "--output", join(dir, "o3.safetensors")],
    ["infer", "--model", VIT, "--inputs", bad, "--output", join(dir, "o4.safetensors")],
  );
  assertUserError(ids, /input_ids\[0, 1\] = 150 is outside \[0, 100\) \(vocab_size\)/, "token id beyond the vocabulary");
  assertUserError(missing, /bad-ids\.safetensors has no "pixel_values"; a vit model takes pixel_values \(found: .*input_ids.*\)/, "ViT fed token ids");
  const [none, noOut] = await both(["infer", "--model", VIT], ["infer", "--model", VIT, "--inputs", bad]);
  assertUserError(none, /exactly one of --inputs FILE, --images FILES… or --text TEXT…; got none/, "no inputs");
  assertUserError(noOut, /--inputs needs --output/, "--inputs without --output");
});

test("compare: bad budgets, head layouts, ranks and validation fractions are one-line errors", async () => {
  const base = ["compare", "--model", VIT, "--data", images, ...quick, "--out", join(dir, "cmp-bad")];
  const [budgets, layouts] = await both([...base, "--budgets", "0,8"], [...base, "--head-layouts", "head_major,diagonal"]);
  assertUserError(budgets, /--budgets takes LoRA ranks: positive integers .* got "0,8"/, "budget 0");
  assertUserError(layouts, /--head-layouts: unknown "diagonal"; valid: head_major, interleaved/, "unknown head layout");
  const [ranks, val] = await both([...base, "--ranks", "8,8,3"], [...base, "--val-fraction", "1"]);
  assertUserError(ranks, /compare takes --ranks auto .* got "8,8,3"/, "explicit ranks");
  assertUserError(val, /--val-fraction must be in \[0, 1\) .* got 1/, "validation fraction 1");
});

test("a train that fails before its first checkpoint leaves --out as it found it; a folder holding another's file is still refused", async () => {
  const data = join(dir, "one-per-class");
  await writeImageFolder(data, { classes: 3, perClass: 1, size: 16 });
  const train = (out: string, ...extra: string[]) =>
    cliAsync(["train", "--model", VIT, "--data", data, "--construction", "lora", "--ranks", "2", ...quick, "--out", out, ...extra]);
  const fresh = join(dir, "run-fails");
  const empty = join(dir, "run-empty");
  mkdirSync(empty);
  const foreign = join(dir, "run-foreign");
  mkdirSync(foreign);
  writeFileSync(join(foreign, "notes.txt"), "mine");
  // one image per class: a validation split takes none, found after config.json is written
  const [failed, failedInEmpty, refused] = await Promise.all([
    train(fresh, "--val-fraction", "0.1"),
    train(empty, "--val-fraction", "0.1"),
    train(foreign, "--val-fraction", "0"),
  ]);
  assertUserError(failed, /--val-fraction 0\.1 holds out nothing/, "validation split of nothing");
  assertUserError(failedInEmpty, /--val-fraction 0\.1 holds out nothing/, "validation split of nothing, in an empty folder");
  assertUserError(refused, /already holds files \(notes\.txt\)/, "a folder holding another's file");
  assert.ok(!existsSync(fresh), "the folder the failed run made is gone");
  assert.deepEqual(readdirSync(empty), [], "a folder the run did not make stays, emptied of what the run wrote");
  assert.deepEqual(readdirSync(foreign), ["notes.txt"]);
  assert.equal(readFileSync(join(foreign, "notes.txt"), "utf8"), "mine");
  const [again, againInEmpty] = await Promise.all([train(fresh, "--val-fraction", "0"), train(empty, "--val-fraction", "0")]);
  assertOk(again, "the corrected run into the same --out");
  assertOk(againInEmpty, "the corrected run into the empty folder");
  assert.ok(existsSync(join(fresh, "summary.json")) && existsSync(join(empty, "summary.json")));
});
