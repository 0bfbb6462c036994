/**
 * The Brown POS benchmark's data: Brown tags to coarse classes by the rules data/brown-pos.ts
 * states, the corpus's first sentence as tagged text, and the benchmark's split (training and test
 * sentences from disjoint files, seeded, within the length cap).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { POS_TAGS, brownPosSentences, coarseTag, parseTaggedLine } from "../src/data/brown-pos.ts";
import { join } from "node:path";
import { brownPosSplit } from "../src/experiments/embedded-pos.ts";
import { DEFAULTS } from "../src/experiments/run-config.ts";
import { prepareData } from "../src/experiments/run.ts";
import { bertWithTokenizer } from "./bert-data.ts";
import { tempDir } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

test("Brown tags to coarse classes: title/headline marks, possessives, contractions, negation, foreign words, punctuation", () => {
  const cases: [string, string][] = [
    ["at", "DET"],
    ["np-tl", "NOUN"],
    ["nns$", "NOUN"],
    ["nn-tl-hl", "NOUN"],
    ["bedz", "VERB"],
    ["md*", "VERB"],
    ["ppss+md", "PRON"],
    ["*", "ADV"],
    ["ql", "ADV"],
    ["wdt", "DET"],
    ["cs", "ADP"],
    ["cc", "CONJ"],
    ["to", "PRT"],
    ["od", "ADJ"],
    ["cd-tl", "NUM"],
    ["fw-nn", "X"],
    ["uh", "X"],
    [",-hl", "."],
    ["``", "."],
    ["--", "."],
  ];
  for (const [tag, want] of cases) assert.equal(coarseTag(tag), want, tag);
});

test("the corpus's first sentence, its quotes as \"", () => {
  const [first] = brownPosSentences(["a"])[0];
  const want = parseTaggedLine(
    "The/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.",
  );
  assert.deepEqual(first.words, want.words);
  assert.equal(first.words[15], '"');
  assert.deepEqual(
    first.tags.map((t) => POS_TAGS[t]),
    want.tags,
  );
  assert.deepEqual(want.tags.slice(0, 6), ["DET", "NOUN", "NOUN", "ADJ", "NOUN", "VERB"]);
});

test("the benchmark split: seeded, sentences of 2..24 words, training and test from disjoint files", () => {
  const a = brownPosSplit(64, 128, 3);
  assert.deepEqual(brownPosSplit(64, 128, 3), a, "the same seed gives the same split");
  assert.notDeepEqual(brownPosSplit(64, 128, 4).train.items, a.train.items);
  assert.equal(a.train.items.length, 64);
  assert.equal(a.test.items.length, 128);
  assert.deepEqual(a.train.classNames, [...POS_TAGS]);
  for (const s of [...a.train.items, ...a.test.items]) assert.ok(s.words.length >= 2 && s.words.length <= 24 && s.tags.length === s.words.length);
  // a sentence's file is the only place it occurs (nearly always): no test sentence is a training sentence
  const seen = new Set(a.train.items.map((s) => s.words.join(" ")));
  assert.equal(a.test.items.filter((s) => s.words.length > 8 && seen.has(s.words.join(" "))).length, 0);
});

test("train/compare --task token-classification without --data: the benchmark's sentences through the --model encoder's tokenizer, a new 12-tag token head", async () => {
  const model = bertWithTokenizer("bert_seq", join(tempDir(), "bert"));
  const prepared = await prepareData({ ...DEFAULTS, model, task: "token-classification" }, nodeRuntime, () => {});
  assert.equal(prepared.embedded, true);
  assert.match(prepared.about!, /part-of-speech tagging of Brown/);
  assert.deepEqual(prepared.data.classNames, [...POS_TAGS]);
  assert.equal(prepared.data.size("train"), 256);
  const m = await prepared.loadModel(0);
  assert.equal(m.family.task, "token-classification");
  assert.ok(m.newHead);
  const batch = await prepared.data.batch("test", [0, 1], 2);
  const words = brownPosSplit(256, 512, 0)
    .test.items.slice(0, 2)
    .reduce((n, s) => n + s.words.length, 0);
  assert.equal(Array.from(batch.labels.data as BigInt64Array).filter((y) => y !== -100n).length, words, "one label per word");
});
