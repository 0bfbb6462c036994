import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, DataError, FormatError } from "../errors.ts";
import { loadGlue, loadTextTable, readGlueTsv, readTextTable } from "./text-datasets.ts";
import { tempDir } from "../../test/make-data.ts";

const dir = tempDir();

function write(name: string, lines: string[]): string {
  const path = join(dir, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

/** Assert a DataError whose message names `file:line`. */
function failsAt(fn: () => unknown, file: string, line: number): void {
  assert.throws(fn, (e: Error) => e instanceof DataError && e.message.includes(`${file}:${line}`), `${file}:${line}`);
}

test("CoLA: no header, label in column 2, sentence in column 4", () => {
  const cola = join(dir, "CoLA");
  write("CoLA/train.tsv", ["gj04\t1\t\tOur friends won't buy this analysis.", "gj04\t0\t*\tThey drank the pub."]);
  write("CoLA/dev.tsv", ["gj04\t1\t\tThe sailors rode the breeze clear of the rocks."]);
  const { train, test: dev } = loadGlue("cola", cola);
  assert.deepEqual(train.items, [
    { text: "Our friends won't buy this analysis.", label: 1 },
    { text: "They drank the pub.", label: 0 },
  ]);
  assert.deepEqual(train.classNames, ["unacceptable", "acceptable"]);
  assert.equal(dev.items.length, 1);
});

test("SST-2 with header; quotes are data, not CSV quoting", () => {
  const f = write("SST-2/train.tsv", ["sentence\tlabel", 'a "charming" film \t1', "dull\t0"]);
  assert.deepEqual(readGlueTsv("sst2", f).items, [
    { text: 'a "charming" film ', label: 1 },
    { text: "dull", label: 0 },
  ]);
});

test("MRPC: sentence pairs with the Quality label", () => {
  const f = write("MRPC/train.tsv", [
    "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
    "1\t702876\t702977\tAmrozi accused his brother.\tReferring to him, Amrozi accused his brother.",
  ]);
  assert.deepEqual(readGlueTsv("mrpc", f).items, [
    { text: "Amrozi accused his brother.", textPair: "Referring to him, Amrozi accused his brother.", label: 1 },
  ]);
});

test("GLUE malformed rows are DataErrors naming file and line; a wrong header a FormatError", () => {
  const cols = write("bad/cols.tsv", ["gj04\t1\t\tfine", "gj04\t1\tmissing a column", "gj04\t0\t\tfine"]);
  failsAt(() => readGlueTsv("cola", cols), cols, 2);
  const frac = write("bad/frac.tsv", ["sentence\tlabel", "ok\t1", "ok\t0", "bad\t0.5"]);
  failsAt(() => readGlueTsv("sst2", frac), frac, 4);
  const range = write("bad/range.tsv", ["sentence\tlabel", "bad\t2"]);
  failsAt(() => readGlueTsv("sst2", range), range, 2);
  const header = write("bad/header.tsv", ["text\tlabel", "x\t1"]);
  assert.throws(() => readGlueTsv("sst2", header), FormatError);
  const oneClass = write("bad/one.tsv", ["sentence\tlabel"]);
  assert.throws(() => readGlueTsv("sst2", oneClass), DataError); // no examples
});

test("CSV with string labels: classes sorted over train and test together", () => {
  const train = write("t/train.csv", ["id,review,stars", '1,"good, really",pos', "2,bad,neg", "3,meh,neutral"]);
  const testFile = write("t/test.csv", ["id,review,stars", "4,great,pos"]);
  const s = loadTextTable({ train, test: testFile }, { text: "review", label: "stars" });
  assert.deepEqual(s.train.classNames, ["neg", "neutral", "pos"]);
  assert.deepEqual(s.train.items, [
    { text: "good, really", label: 2 },
    { text: "bad", label: 0 },
    { text: "meh", label: 1 },
  ]);
  assert.deepEqual(s.test.items, [{ text: "great", label: 2 }]);
});

test("CSV rows with the wrong field count, and unknown columns", () => {
  const f = write("t/short.csv", ["text,label", "a,0", "b,1", "c"]);
  failsAt(() => readTextTable(f, { text: "text", label: "label" }), f, 4);
  assert.throws(
    () => readTextTable(f, { text: "sentence", label: "label" }),
    (e: Error) => e instanceof ConfigError && e.message.includes('["text","label"]'),
  );
});

test("JSONL with integer labels, pairs and explicit class names", () => {
  const f = write("j/train.jsonl", ['{"a": "first", "b": "second", "y": 1}', "", '{"a": "third", "b": "fourth", "y": 0}']);
  const ds = readTextTable(f, { text: "a", textPair: "b", label: "y", classNames: ["no", "yes"] });
  assert.deepEqual(ds.items, [
    { text: "first", textPair: "second", label: 1 },
    { text: "third", textPair: "fourth", label: 0 },
  ]);
  assert.deepEqual(ds.classNames, ["no", "yes"]);
  // without classNames, indices name the classes 0..max
  assert.deepEqual(readTextTable(f, { text: "a", label: "y" }).classNames, ["0", "1"]);
});

test("label errors name file and line: out of range, non-integer, mixed kinds, bad JSON", () => {
  const range = write("j/range.jsonl", ['{"t": "a", "y": 0}', '{"t": "b", "y": 1}', '{"t": "c", "y": 2}']);
  failsAt(() => readTextTable(range, { text: "t", label: "y", classNames: ["n", "p"] }), range, 3);
  const frac = write("j/frac.jsonl", ['{"t": "a", "y": 0}', '{"t": "b", "y": 1.5}']);
  failsAt(() => readTextTable(frac, { text: "t", label: "y" }), frac, 2);
  const mixed = write("j/mixed.csv", ["t,y", "a,1", "b,pos"]);
  failsAt(() => readTextTable(mixed, { text: "t", label: "y" }), mixed, 3);
  const json = write("j/broken.jsonl", ['{"t": "a", "y": 0}', '{"t": "b", "y": 1', '{"t": "c", "y": 1}']);
  failsAt(() => readTextTable(json, { text: "t", label: "y" }), json, 2);
  const missing = write("j/missing.jsonl", ['{"t": "a", "y": 0}', '{"y": 1}']);
  failsAt(() => readTextTable(missing, { text: "t", label: "y" }), missing, 2);
  const unknown = write("j/unknown.csv", ["t,y", "a,pos", "b,neg", "c,meh"]);
  failsAt(() => readTextTable(unknown, { text: "t", label: "y", classNames: ["neg", "pos"] }), unknown, 4);
  const one = write("j/one.csv", ["t,y", "a,pos", "b,pos"]);
  assert.throws(
    () => readTextTable(one, { text: "t", label: "y" }),
    (e: Error) => e instanceof DataError && /at least 2 classes/.test(e.message),
  );
  assert.throws(() => readTextTable(write("j/x.txt", ["t"]), { text: "t", label: "y" }), ConfigError);
});
