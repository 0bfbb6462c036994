import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, DataError } from "../errors.ts";
import { loadDtd, loadImageFolder, loadImageFolderSplit } from "./image-datasets.ts";
import { tempDir } from "../../test/make-data.ts";
import { writeSolidImage } from "./test-fixtures.ts";
import type { ImageDataset } from "./types.ts";

const paths = (ds: ImageDataset) => ds.items.map((it) => ("path" in it ? it.path : "")).sort();

/** root/<class>/<i>.png for each class, plus one corrupt PNG and one non-image file. */
async function makeFolder(classes: string[], perClass: number): Promise<string> {
  const root = tempDir();
  for (const [c, name] of classes.entries()) {
    for (let i = 0; i < perClass; i++) await writeSolidImage(join(root, name, `${i}.png`), 4, 4, [c * 50, i * 10, 0]);
  }
  writeFileSync(join(root, classes[0], "broken.png"), "not an image");
  writeFileSync(join(root, classes[0], "notes.txt"), "ignored: not an image extension");
  return root;
}

test("image folder: classes sorted, labels by folder, corrupt file skipped with a warning", async () => {
  const root = await makeFolder(["river", "forest", "sea"], 4);
  const warnings: string[] = [];
  const ds = await loadImageFolder(root, { warn: (m) => warnings.push(m) });
  assert.deepEqual(ds.classNames, ["forest", "river", "sea"]);
  assert.equal(ds.items.length, 12);
  for (const item of ds.items) {
    assert.ok("path" in item);
    assert.ok(item.path.includes(join(root, ds.classNames[item.label])));
  }
  const broken = join(root, "river", "broken.png");
  assert.deepEqual(
    ds.skipped.map((s) => s.path),
    [broken],
  );
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0].includes("Skipped 1") && warnings[0].includes(broken));
});

test("verify: 'decode' also skips a truncated JPEG whose header reads fine", async () => {
  const root = tempDir();
  for (const c of ["a", "b"]) await writeSolidImage(join(root, c, "ok.jpg"), 32, 32, [10, 20, 30]);
  await writeSolidImage(join(root, "a", "cut.jpg"), 64, 64, [200, 10, 10]);
  const bytes = readFileSync(join(root, "a", "cut.jpg"));
  writeFileSync(join(root, "a", "cut.jpg"), bytes.subarray(0, bytes.length >> 1));
  const quiet = () => {};
  const decoded = await loadImageFolder(root, { verify: "decode", warn: quiet });
  assert.deepEqual(
    decoded.skipped.map((s) => s.path),
    [join(root, "a", "cut.jpg")],
  );
  assert.equal((await loadImageFolder(root, { verify: "none", warn: quiet })).items.length, 3);
});

test("folder split: seeded, disjoint, 80/20 by default, stratified on request", async () => {
  const root = await makeFolder(["a", "b"], 5);
  const quiet = { warn: () => {} };
  const s1 = await loadImageFolderSplit(root, { ...quiet, seed: 1 });
  const s2 = await loadImageFolderSplit(root, { ...quiet, seed: 1 });
  assert.equal(s1.train.items.length, 8);
  assert.equal(s1.test.items.length, 2);
  assert.deepEqual(paths(s1.train), paths(s2.train));
  const all = [...paths(s1.train), ...paths(s1.test)].sort();
  assert.equal(new Set(all).size, 10);
  assert.equal(s1.train.skipped.length, 1); // reported once, on train
  assert.equal(s1.test.skipped.length, 0);

  const strat = await loadImageFolderSplit(root, { ...quiet, trainFraction: 0.6, stratify: true, seed: 5 });
  for (const part of [strat.train, strat.test]) {
    const perClass = [0, 1].map((c) => part.items.filter((it) => it.label === c).length);
    assert.deepEqual(perClass, part === strat.train ? [3, 3] : [2, 2]);
  }
  await assert.rejects(loadImageFolderSplit(root, { ...quiet, trainFraction: 1 }), ConfigError);
});

test("an empty class folder, a single class, or a missing root is a DataError", async () => {
  const root = await makeFolder(["a", "b"], 2);
  mkdirSync(join(root, "empty"));
  await assert.rejects(loadImageFolder(root, { warn: () => {} }), (e: Error) => e instanceof DataError && e.message.includes(join(root, "empty")));
  const single = await makeFolder(["only"], 2);
  await assert.rejects(loadImageFolder(single, { warn: () => {} }), (e: Error) => e instanceof DataError && /at least 2/.test(e.message));
  await assert.rejects(loadImageFolder(join(root, "nope")), DataError);
});

test("a class whose every file is unreadable is a DataError", async () => {
  const root = tempDir();
  await writeSolidImage(join(root, "a", "0.png"), 2, 2, [0, 0, 0]);
  mkdirSync(join(root, "b"));
  writeFileSync(join(root, "b", "bad.jpg"), "garbage");
  await assert.rejects(loadImageFolder(root, { warn: () => {} }), (e: Error) => e instanceof DataError && e.message.includes("all files of b were skipped"));
});

/** images/<class>/<class>_<i>.jpg and labels/{train,test,val}1.txt. */
async function makeDtd(): Promise<string> {
  const root = tempDir();
  const lines: Record<string, string[]> = { train: [], test: [], val: [] };
  for (const cls of ["banded", "dotted", "zigzagged"]) {
    for (let i = 0; i < 4; i++) {
      const rel = `${cls}/${cls}_${i}.jpg`;
      await writeSolidImage(join(root, "images", rel), 8, 8, [i * 60, 0, 0]);
      lines[i < 2 ? "train" : i === 2 ? "test" : "val"].push(rel);
    }
  }
  lines.test.push("dotted/missing_file.jpg");
  mkdirSync(join(root, "labels"));
  for (const [split, ls] of Object.entries(lines)) writeFileSync(join(root, "labels", `${split}1.txt`), ls.join("\n") + "\n");
  return root;
}

test("DTD: split lists give train and test; a listed missing file is skipped", async () => {
  const root = await makeDtd();
  const warnings: string[] = [];
  const { train, test: testSet } = await loadDtd(root, { warn: (m) => warnings.push(m) });
  assert.deepEqual(train.classNames, ["banded", "dotted", "zigzagged"]);
  assert.equal(train.items.length, 6);
  assert.equal(testSet.items.length, 3);
  assert.deepEqual(
    train.items.map((it) => it.label),
    [0, 0, 1, 1, 2, 2],
  );
  assert.deepEqual(
    testSet.skipped.map((s) => s.path),
    [join(root, "images", "dotted", "missing_file.jpg")],
  );
  assert.ok(warnings.some((w) => w.includes("missing_file.jpg")));
});

test("DTD: the paper's random train subset is seeded", async () => {
  const root = await makeDtd();
  const a = await loadDtd(root, { trainSubset: 4, seed: 9, warn: () => {} });
  const b = await loadDtd(root, { trainSubset: 4, seed: 9, warn: () => {} });
  assert.equal(a.train.items.length, 4);
  assert.deepEqual(paths(a.train), paths(b.train));
  await assert.rejects(loadDtd(root, { trainSubset: 7, warn: () => {} }), ConfigError);
  await assert.rejects(loadDtd(root, { partition: 11 }), ConfigError);
});

test("DTD: a list line naming an unknown class is a DataError with file and line", async () => {
  const root = await makeDtd();
  const list = join(root, "labels", "train1.txt");
  writeFileSync(list, "banded/banded_0.jpg\nstriped/striped_1.jpg\n");
  await assert.rejects(loadDtd(root, { warn: () => {} }), (e: Error) => e instanceof DataError && e.message.includes(`${list}:2`));
});
