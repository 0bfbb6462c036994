import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { ConfigError } from "../errors.ts";
import { longestFirst, TextTokenizer } from "./tokenize.ts";
import { tempDir } from "../../test/make-data.ts";

/*
 * A tiny RoBERTa-style byte-level BPE written by hand. With these merges:
 *   "hello"  → h e l l o → he l l o → he ll o → hell o → hello           = [15]
 *   "Ġworld" → Ġw o r l d → Ġw or l d → Ġwor l d → Ġwor ld → Ġworld      = [20]
 *   "world"  → w or l d → w or ld ("w or" is no merge)                  = [9, 17, 19]
 *   "Ġhello" → Ġ he … → Ġ hello ("Ġ h"/"Ġ hello" are no merges)          = [8, 15]
 *   "zoo"    → z is not in the vocab → <unk>, o, o                       = [3, 7, 7]
 */
const VOCAB: Record<string, number> = {
  "<s>": 0,
  "<pad>": 1,
  "</s>": 2,
  "<unk>": 3,
  h: 4,
  e: 5,
  l: 6,
  o: 7,
  Ġ: 8,
  w: 9,
  r: 10,
  d: 11,
  he: 12,
  ll: 13,
  hell: 14,
  hello: 15,
  Ġw: 16,
  or: 17,
  Ġwor: 18,
  ld: 19,
  Ġworld: 20,
  "<mask>": 21,
};
const MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"];

const special = (id: number, content: string, lstrip = false) => ({
  id,
  content,
  single_word: false,
  lstrip,
  rstrip: false,
  normalized: false,
  special: true,
});

const TOKENIZER_JSON = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [special(0, "<s>"), special(1, "<pad>"), special(2, "</s>"), special(3, "<unk>"), special(21, "<mask>", true)],
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0], trim_offsets: true, add_prefix_space: false },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: "BPE",
    dropout: null,
    unk_token: "<unk>",
    continuing_subword_prefix: "",
    end_of_word_suffix: "",
    fuse_unk: false,
    byte_fallback: false,
    vocab: VOCAB,
    merges: MERGES,
  },
};
const CONFIG = { pad_token: "<pad>", model_max_length: 512, bos_token: "<s>", eos_token: "</s>" };

const tok = new TextTokenizer(TOKENIZER_JSON, CONFIG);

test("single texts and RoBERTa pairs (<s> A </s></s> B </s>) from the hand-derived vocab", () => {
  assert.deepEqual(tok.encode("hello world"), { ids: [0, 15, 20, 2], typeIds: [0, 0, 0, 0] });
  assert.deepEqual(tok.encode("hello world", "world"), {
    ids: [0, 15, 20, 2, 2, 9, 17, 19, 2],
    typeIds: [0, 0, 0, 0, 1, 1, 1, 1, 1],
  });
  assert.deepEqual(tok.encode("zoo").ids, [0, 3, 7, 7, 2]);
  assert.deepEqual(tok.encode("hello world", undefined, { addSpecialTokens: false }).ids, [15, 20]);
  // untruncated output agrees with the library's own encode
  const lib = new Tokenizer(TOKENIZER_JSON, CONFIG);
  assert.deepEqual(tok.encode("hello world", "world").ids, lib.encode("hello world", { text_pair: "world" }).ids);
  assert.equal(tok.decode([0, 15, 20, 2]), "hello world");
});

test("truncation: singles keep the head, pairs cut the longest first", () => {
  // "hello hello hello hello" = [15, 8,15, 8,15, 8,15]
  assert.deepEqual(tok.encode("hello hello hello hello", undefined, { maxLength: 5 }).ids, [0, 15, 8, 15, 2]);
  // 7 + 3 tokens, budget 8 − 4 specials = 4: the shorter keeps floor(4/2) = 2, the longer the rest
  assert.deepEqual(tok.encode("hello hello hello hello", "world", { maxLength: 8 }).ids, [0, 15, 8, 2, 2, 9, 17, 2]);
  // 7 + 3 tokens, budget 6: the shorter fits in half, only the longer is cut (to 3)
  assert.deepEqual(tok.encode("hello hello hello hello", "world", { maxLength: 10 }).ids, [0, 15, 8, 15, 2, 2, 9, 17, 19, 2]);
  // 3 + 3 tokens, budget 5: a tie gives the first floor(5/2) = 2
  assert.deepEqual(tok.encode("hello hello", "world", { maxLength: 9 }).ids, [0, 15, 8, 2, 2, 9, 17, 19, 2]);
  assert.equal(tok.encode("hello hello hello hello", undefined, { truncation: false, maxLength: 3 }).ids.length, 9);
  assert.throws(() => tok.encode("hello", "world", { maxLength: 5 }), ConfigError); // 4 specials leave 1 for 2 texts
});

test("longestFirst matches the table of HF tokenizers' Rust truncation tests (max 7)", () => {
  const cases: [number, number, number, number][] = [
    [0, 0, 0, 0],
    [0, 2, 0, 2],
    [0, 4, 0, 4],
    [0, 8, 0, 7],
    [2, 0, 2, 0],
    [2, 2, 2, 2],
    [2, 4, 2, 4],
    [2, 8, 2, 5],
    [4, 0, 4, 0],
    [4, 2, 4, 2],
    [4, 4, 3, 4],
    [4, 8, 3, 4],
    [8, 0, 7, 0],
    [8, 2, 5, 2],
    [8, 4, 4, 3],
    [8, 8, 3, 4],
  ];
  for (const [a, b, ea, eb] of cases) assert.deepEqual(longestFirst(a, b, 7), [ea, eb], `${a}, ${b}`);
});

test("batches pad on the right to the longest row, with attention mask and type ids", () => {
  const batch = tok.encodeBatch([{ text: "hello" }, { text: "hello world", textPair: "world" }]);
  assert.deepEqual(batch.shape, [2, 9]);
  assert.ok(batch.inputIds instanceof BigInt64Array);
  assert.deepEqual(Array.from(batch.inputIds, Number), [0, 15, 2, 1, 1, 1, 1, 1, 1, 0, 15, 20, 2, 2, 9, 17, 19, 2]);
  assert.deepEqual(Array.from(batch.attentionMask, Number), [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(batch.tokenTypeIds, Number), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
});

test("max_length padding and int32 ids", () => {
  const batch = tok.encodeBatch([{ text: "world" }], { padding: "max_length", maxLength: 7, dtype: "int32" });
  assert.ok(batch.inputIds instanceof Int32Array);
  assert.deepEqual(batch.shape, [1, 7]);
  assert.deepEqual(Array.from(batch.inputIds), [0, 9, 17, 19, 2, 1, 1]);
  assert.deepEqual(Array.from(batch.attentionMask), [1, 1, 1, 1, 1, 0, 0]);
  // model_max_length (512) is the default limit
  assert.deepEqual(tok.encodeBatch([{ text: "world" }], { padding: "max_length" }).shape, [1, 512]);
});

test("missing pad token or length limit are ConfigErrors when needed", () => {
  const bare = new TextTokenizer(TOKENIZER_JSON, {});
  assert.equal(bare.padId, null);
  assert.throws(() => bare.encode("hello"), ConfigError); // truncation needs a maxLength
  assert.deepEqual(bare.encodeBatch([{ text: "hello" }], { maxLength: 8 }).shape, [1, 3]); // equal rows need no pad
  assert.throws(() => bare.encodeBatch([{ text: "hello" }, { text: "hello world" }], { maxLength: 8 }), ConfigError);
  const fromJson = new TextTokenizer({ ...TOKENIZER_JSON, padding: { pad_id: 1 }, truncation: { max_length: 6 } }, {});
  assert.equal(fromJson.padId, 1);
  assert.equal(fromJson.modelMaxLength, 6);
});

test("fromDir reads tokenizer.json and tokenizer_config.json", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(TOKENIZER_JSON));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...CONFIG, pad_token: { content: "<pad>" } }));
  const t = TextTokenizer.fromDir(dir);
  assert.equal(t.padId, 1);
  assert.equal(t.modelMaxLength, 512);
  assert.deepEqual(t.encode("hello world").ids, [0, 15, 20, 2]);
});

test("a token outside a vocabulary without an unknown token is a ConfigError", () => {
  const wordLevel = {
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab: { "[PAD]": 0, a: 1 } },
  };
  const t = new TextTokenizer(wordLevel, { pad_token: "[PAD]" });
  assert.deepEqual(t.encode("a a", undefined, { maxLength: 4 }).ids, [1, 1]);
  assert.throws(
    () => t.encode("a c", undefined, { maxLength: 4 }),
    (e: Error) => e instanceof ConfigError && e.message.includes('"c"'),
  );
});
