import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, DataError } from "../errors.ts";
import { checkDataset } from "./dataset-checks.ts";
import { randomSubset, splitDataset, takeItems } from "./split.ts";
import type { TextDataset } from "./types.ts";

/** 30 items: label = i % 3, text = its index, so parts can be checked by value. */
const ds: TextDataset = {
  kind: "text",
  items: Array.from({ length: 30 }, (_, i) => ({ text: String(i), label: i % 3 })),
  classNames: ["a", "b", "c"],
};
const ids = (d: TextDataset) => d.items.map((it) => Number(it.text));

test("random split: round(n·f) train items, disjoint, covering, seed-determined", () => {
  const s = splitDataset(ds, { trainFraction: 0.7, seed: 4 });
  assert.equal(s.train.items.length, 21);
  assert.equal(s.test.items.length, 9);
  assert.deepEqual(
    [...ids(s.train), ...ids(s.test)].sort((a, b) => a - b),
    Array.from({ length: 30 }, (_, i) => i),
  );
  assert.deepEqual(ids(splitDataset(ds, { trainFraction: 0.7, seed: 4 }).train), ids(s.train));
  assert.notDeepEqual(ids(splitDataset(ds, { trainFraction: 0.7, seed: 5 }).train), ids(s.train));
  assert.equal(s.train.classNames, ds.classNames);
});

test("stratified split keeps each class's share", () => {
  const s = splitDataset(ds, { trainFraction: 0.8, stratify: true, seed: 1 });
  for (let c = 0; c < 3; c++) {
    assert.equal(s.train.items.filter((it) => it.label === c).length, 8);
    assert.equal(s.test.items.filter((it) => it.label === c).length, 2);
  }
});

test("subsets and item selection", () => {
  const sub = randomSubset(ds, 10, 2);
  assert.equal(new Set(ids(sub)).size, 10);
  assert.deepEqual(ids(randomSubset(ds, 10, 2)), ids(sub));
  assert.deepEqual(ids(takeItems(ds, [5, 1])), [5, 1]);
  assert.throws(() => randomSubset(ds, 31), ConfigError);
  assert.throws(() => splitDataset(ds, { trainFraction: 0 }), ConfigError);
});

test("dataset checks: fewer than 2 classes, no items, out-of-range or fractional labels", () => {
  const bad = (patch: Partial<TextDataset>) => () => checkDataset({ ...ds, ...patch }, "unit.tsv");
  assert.throws(bad({ classNames: ["only"] }), (e: Error) => e instanceof DataError && e.message.includes("unit.tsv"));
  assert.throws(bad({ items: [] }), DataError);
  assert.throws(bad({ items: [{ text: "x", label: 3 }] }), (e: Error) => e instanceof DataError && /\[0, 3\).*label 3/.test(e.message));
  assert.throws(bad({ items: [{ text: "x", label: 0.5 }] }), DataError);
  checkDataset(ds, "unit.tsv");
});
