/**
 * `--num-labels N`: the head's class count set explicitly. Integer labels must lie in 0..N−1
 * (the message names the file, the row and the range) and need not all occur; named classes
 * (image folders) must number exactly N; without the flag labels must be exactly 0..C−1.
 * Through the real CLI (one line, exit 1) and the table reader.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readTextTable } from "../src/data/text-datasets.ts";
import { DataError } from "../src/errors.ts";
import { assertOk, assertUserError, cliAsync } from "./cli-helpers.ts";
import { VIT, robertaWithTokenizer, sentences, tempDir, writeImageFolder } from "./make-data.ts";

const dir = tempDir();
let roberta = "";

before(() => {
  roberta = robertaWithTokenizer(join(dir, "roberta"));
});

/** A JSONL table of labelled sentences; `labels[i]` replaces the i-th label. */
function table(name: string, labels: number[]): string {
  const path = join(dir, `${name}.jsonl`);
  const rows = sentences(labels.length, labels.length).map((s, i) => JSON.stringify({ text: s.text, label: labels[i] }));
  writeFileSync(path, rows.join("\n") + "\n");
  return path;
}

test("the table reader: with numClasses, labels in [0, N) need not all occur; one outside names its row and the range", () => {
  const sparse = table("sparse", [0, 2, 0, 2, 5]);
  const ds = readTextTable(sparse, { text: "text", label: "label", numClasses: 6 });
  assert.deepEqual(ds.classNames, ["0", "1", "2", "3", "4", "5"]);
  assert.deepEqual(
    ds.items.map((x) => x.label),
    [0, 2, 0, 2, 5],
  );
  assert.throws(
    () => readTextTable(sparse, { text: "text", label: "label", numClasses: 5 }),
    (e: Error) => e instanceof DataError && e.message.includes(`[0, 5)`) && e.message.includes(`${sparse}:5 has 5`) && !e.message.includes("\n"),
  );
  // without it, the missing indices are the error they were
  assert.throws(() => readTextTable(sparse, { text: "text", label: "label" }), /never occur.*--num-labels/);
});

const quick = ["--epochs", "1", "--batch-size", "4", "--threads", "1", "--construction", "lora", "--ranks", "2", "--val-fraction", "0"];

test("train --num-labels: a split lacking classes trains a head of N classes and eval reads it back; out-of-range labels, named classes and bad counts are one-line errors", async () => {
  // classes 0 and 3 only; 1, 2 never occur
  const labels = (n: number) => Array.from({ length: n }, (_, i) => (i % 2) * 3);
  const train = table("train", labels(12));
  const test = table("test", labels(6));
  const args = (out: string, ...extra: string[]) => [
    "train",
    "--model",
    roberta,
    "--data",
    train,
    "--eval-data",
    test,
    "--text-column",
    "text",
    "--label-column",
    "label",
    ...quick,
    "--out",
    join(dir, out),
    ...extra,
  ];
  const bad = table("bad", [...labels(5), 4]);
  const images = join(dir, "images");
  await writeImageFolder(images, { classes: 2, perClass: 3, size: 16 });
  const [ok, without, outOfRange, named, one] = await Promise.all([
    cliAsync(args("run-ok", "--num-labels", "4")),
    cliAsync(args("run-without")),
    cliAsync([...args("run-range", "--num-labels", "4"), "--eval-data", bad]),
    cliAsync(["train", "--model", VIT, "--data", images, ...quick, "--out", join(dir, "run-img"), "--num-labels", "3"]),
    cliAsync(args("run-one", "--num-labels", "1")),
  ]);
  assertOk(ok, "train --num-labels 4 on labels {0, 3}");
  const summary = JSON.parse(readFileSync(join(dir, "run-ok", "summary.json"), "utf8"));
  assert.equal(summary.final.confusionMatrix.length, 4, "the head and the metrics have 4 classes");
  assert.deepEqual(
    summary.final.perClassAccuracy.map((a: number | null) => a === null),
    [false, true, true, false],
    "classes 1 and 2 have no test examples",
  );
  assertUserError(without, /labels are 0, 3 .* never occur.*--num-labels/, "missing classes without --num-labels");
  assertUserError(outOfRange, new RegExp(`\\[0, 4\\).*${bad}:6 has 4`), "a label outside --num-labels");
  assertUserError(named, /--num-labels 3 does not fit .*images: its 2 classes are named \(class_a, class_b\)/, "--num-labels on an image folder");
  assertUserError(one, /--num-labels must be an integer ≥ 2/, "--num-labels 1");

  // eval takes the run's --num-labels from RUN_DIR/config.json: the same 4-class head, the same split
  const ev = await cliAsync(["eval", "--model", roberta, "--adapter", join(dir, "run-ok", "best"), "--data", train, "--json"]);
  assertOk(ev, "eval of the --num-labels run");
  const r = JSON.parse(ev.stdout);
  assert.equal(r.classNames.length, 4);
  assert.equal(r.numSamples, 6);
});
