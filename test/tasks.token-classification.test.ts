/**
 * Token classification's pieces against independent truth: word → sub-token label alignment as
 * HuggingFace's recipe defines it (first sub-token labelled, the rest and the specials −100), with
 * ids equal to transformers.js's BERT tokenizer on the joined words; seqeval's own documented
 * examples for entity F1; the JSONL reader's tag keys, names, ids and errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AutoTokenizer, env } from "@huggingface/transformers";
import { loadTaggedWords } from "../src/data/tagged-words.ts";
import { TextTokenizer } from "../src/data/tokenize.ts";
import { DataError } from "../src/errors.ts";
import { entities, entityScores, isChunkTagSet } from "../src/tasks/seqeval.ts";
import { alignTags, tokenTaskData } from "../src/tasks/token-data.ts";
import { collectTags, tokenMetrics } from "../src/tasks/token-classification.ts";
import { bertWithTokenizer, taggedSentences, writeTagged } from "./bert-data.ts";
import { tempDir } from "./make-data.ts";

const dir = tempDir("tenslora-tok-");
const bert = bertWithTokenizer("bert_tok", join(dir, "bert"));
const I = -100;

test("alignment: a word's tag on its first WordPiece, −100 on its other pieces and on [CLS]/[SEP]; ids as transformers.js tokenizes the sentence", async () => {
  const tok = TextTokenizer.fromDir(bert);
  const words = ["The", "cats", "played", "unbelievable", "."];
  const e = alignTags(tok, words, [0, 1, 2, 3, 4], 40);
  // [CLS] the cat ##s play ##ed un ##believ ##able . [SEP]
  assert.deepEqual(e.labels, [I, 0, 1, I, 2, I, 3, I, I, 4, I]);
  assert.equal(e.droppedWords, 0);
  env.allowRemoteModels = false;
  env.localModelPath = dir;
  const theirs = await AutoTokenizer.from_pretrained("bert");
  const enc = theirs(words.join(" "));
  assert.deepEqual(e.ids, Array.from(enc.input_ids.data as BigInt64Array, Number));
  assert.deepEqual(e.typeIds, Array.from(enc.token_type_ids!.data as BigInt64Array, Number));
});

test("alignment: truncation keeps a word whose first piece fits and drops the rest, counting the words lost", () => {
  const tok = TextTokenizer.fromDir(bert);
  // budget 5 − 2 specials = 3 pieces: the cat ##s | play ##ed …
  const e = alignTags(tok, ["the", "cats", "played", "dog"], [0, 1, 2, 3], 5);
  assert.deepEqual(e.labels, [I, 0, 1, I, I]);
  assert.equal(e.droppedWords, 2);
});

test("batches: padded to the longest sentence, mask 0 and labels −100 on padding, filler rows all −100", async () => {
  const split = loadTaggedWords({
    train: writeTagged(join(dir, "b-train.jsonl"), taggedSentences(5, 1)),
    test: writeTagged(join(dir, "b-test.jsonl"), taggedSentences(2, 2)),
  });
  const data = tokenTaskData(split, TextTokenizer.fromDir(bert), 40);
  const batch = await data.batch("train", [0, 1], 3);
  const T = data.seqLen!;
  assert.deepEqual(batch.labels.shape, [3, T]);
  const labels = Array.from(batch.labels.data as BigInt64Array, Number);
  const mask = Array.from(batch.inputs.attention_mask.data as BigInt64Array, Number);
  labels.forEach((y, i) => mask[i] === 0 && assert.equal(y, I, `padding at ${i} is labelled`));
  assert.ok(
    labels.slice(2 * T).every((y) => y === I),
    "the filler row is scored",
  );
  const words = split.train.items[0].words.length;
  assert.equal(labels.slice(0, T).filter((y) => y !== I).length, words, "one label per word");
});

test("seqeval's documented examples: entities, and micro P/R/F1 over chunks", () => {
  // seqeval README: get_entities(['B-PER', 'I-PER', 'O', 'B-LOC']) == [('PER', 0, 1), ('LOC', 3, 3)]
  assert.deepEqual(entities(["B-PER", "I-PER", "O", "B-LOC"]), [
    { type: "PER", start: 0, end: 1 },
    { type: "LOC", start: 3, end: 3 },
  ]);
  // lenient IOB: an I- after O starts a chunk, a change of type ends one
  assert.deepEqual(entities(["O", "I-PER", "I-LOC"]), [
    { type: "PER", start: 1, end: 1 },
    { type: "LOC", start: 2, end: 2 },
  ]);
  // seqeval README: f1_score / precision / recall of this pair are 0.50
  const yTrue = [
    ["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"],
    ["B-PER", "I-PER", "O"],
  ];
  const yPred = [
    ["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"],
    ["B-PER", "I-PER", "O"],
  ];
  const s = entityScores(yTrue, yPred);
  assert.deepEqual([s.precision, s.recall, s.f1, s.support], [0.5, 0.5, 0.5, 2]);
  assert.equal(isChunkTagSet(["O", "B-PER", "I-PER"]), true);
  assert.equal(isChunkTagSet(["DET", "NOUN", "VERB"]), false);
});

test("metrics: token accuracy over the labelled words; entity F1 for chunk tags, macro F1 for other tags", () => {
  const C = 3;
  // two rows of T = 4: labels with −100 at [CLS] and padding; logits one-hot at the predicted class
  const labels = BigInt64Array.from([I, 1, 2, 0, I, 1, 0, I].map(BigInt));
  const pred = [0, 1, 2, 0, 0, 1, 1, 0];
  const logits = new Float32Array(8 * C);
  pred.forEach((p, i) => (logits[i * C + p] = 1));
  const tags = { gold: [], pred: [] };
  collectTags(tags, logits, labels, 2, 4, C);
  assert.deepEqual(tags, {
    gold: [
      [1, 2, 0],
      [1, 0],
    ],
    pred: [
      [1, 2, 0],
      [1, 1],
    ],
  });
  const ner = tokenMetrics(tags, ["O", "B-PER", "I-PER"]);
  assert.equal(ner.accuracy, 4 / 5);
  assert.equal(ner.f1Kind, "entity");
  // gold chunks: PER[0..1] in row 0, PER[0] in row 1; predicted: those two and PER[1] in row 1 (B- after B-)
  assert.deepEqual([ner.precision, ner.recall, ner.f1.toFixed(12)], [2 / 3, 1, (0.8).toFixed(12)]);
  const pos = tokenMetrics(tags, ["DET", "NOUN", "VERB"]);
  assert.equal(pos.f1Kind, "macro");
  // per tag F1 = 2tp / (2tp + fp + fn): DET 2/3, NOUN 4/5, VERB 1
  assert.ok(Math.abs(pos.f1 - (2 / 3 + 4 / 5 + 1) / 3) < 1e-12);
});

test("reader: tags, ner_tags or pos_tags; names through the model's id2label or sorted; integer ids; errors name the line", () => {
  const rows = [{ tokens: ["a", "cat"], tags: ["DET", "NOUN"] }];
  const f = (name: string, r: object[], key = "tags") => writeTagged(join(dir, name), r as never, key);
  const sorted = loadTaggedWords({ train: f("n.jsonl", rows, "pos_tags"), test: f("n2.jsonl", rows) });
  assert.deepEqual(sorted.train.classNames, ["DET", "NOUN"]);
  const viaModel = loadTaggedWords({ train: f("m.jsonl", rows, "ner_tags"), test: f("m2.jsonl", rows) }, { modelLabels: ["X", "NOUN", "DET"] });
  assert.deepEqual(viaModel.train.items[0].tags, [2, 1]);
  const ids = loadTaggedWords({ train: f("i.jsonl", [{ tokens: ["a"], tags: [3] }]), test: f("i2.jsonl", [{ tokens: ["b"], tags: [0] }]) }, { numLabels: 5 });
  assert.equal(ids.train.classNames.length, 5);
  assert.throws(
    () => loadTaggedWords({ train: f("e.jsonl", [{ tokens: ["a", "b"], tags: ["X"] }]), test: f("e2.jsonl", rows) }),
    (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /e\.jsonl:1: 2 tokens but 1 tags/);
      return true;
    },
  );
  assert.throws(
    () => loadTaggedWords({ train: f("r.jsonl", [{ tokens: ["a"], tags: [7] }]), test: f("r2.jsonl", [{ tokens: ["a"], tags: [0] }]) }, { numLabels: 5 }),
    /outside \[0, 5\)/,
  );
  assert.throws(() => loadTaggedWords({ train: f("k.jsonl", [{ words: ["a"], labels: [1] }]), test: f("k2.jsonl", rows) }), /needs "tokens"/);
});
