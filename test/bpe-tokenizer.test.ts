/**
 * The project's byte-level BPE trainer against a from-scratch reference (recount every pair after
 * each merge), and its tokenizer.json in the real consumers: @huggingface/tokenizers round-trips
 * any text through it, and transformers.js loads the folder as a RoBERTa tokenizer giving the
 * same ids, specials and padding.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { AutoTokenizer, env } from "@huggingface/transformers";
import { robertaTokenizerConfig, robertaTokenizerJson, trainBpe, wordCounts } from "../src/data/bpe-train.ts";
import { brownTexts } from "../src/data/brown.ts";
import { detokenize } from "../src/experiments/embedded-encoder.ts";
import { tempDir } from "./make-data.ts";

const corpus = brownTexts(["r"]).slice(0, 2).map(detokenize);

/** Textbook BPE: count every adjacent pair of every word from scratch, merge the most frequent (ties: smaller pair), repeat. */
function referenceMerges(texts: string[], merges: number, minCount: number): [string, string][] {
  const words = [...wordCounts(texts)].map(([w, c]) => ({ s: [...w], c }));
  const out: [string, string][] = [];
  while (out.length < merges) {
    const counts = new Map<string, number>();
    for (const { s, c } of words) for (let i = 0; i + 1 < s.length; i++) counts.set(`${s[i]} ${s[i + 1]}`, (counts.get(`${s[i]} ${s[i + 1]}`) ?? 0) + c);
    const best = [...counts].filter(([, c]) => c >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (!best) break;
    const [l, r] = best[0].split(" ");
    out.push([l, r]);
    for (const w of words) {
      const next: string[] = [];
      for (let i = 0; i < w.s.length; i++) {
        if (w.s[i] === l && w.s[i + 1] === r) {
          next.push(l + r);
          i++;
        } else next.push(w.s[i]);
      }
      w.s = next;
    }
  }
  return out;
}

test("trainBpe learns the textbook BPE merges, in order, on Brown text", () => {
  const model = trainBpe(corpus, 261 + 100);
  assert.deepEqual(model.merges, referenceMerges(corpus, 100, 2));
  assert.equal(model.vocab.size, 261 + 100);
  assert.equal(model.vocab.get("<mask>"), model.vocab.size - 1, "<mask> takes the last id, as RoBERTa's");
  assert.deepEqual(
    ["<s>", "<pad>", "</s>", "<unk>"].map((t) => model.vocab.get(t)),
    [0, 1, 2, 3],
  );
});

test("tokenizer.json round-trips any text (byte-level: no unknown token) and transformers.js encodes as @huggingface/tokenizers does", async () => {
  const model = trainBpe(corpus, 700);
  const json = robertaTokenizerJson(model);
  const config = robertaTokenizerConfig(64);
  const tok = new Tokenizer(json, config);
  const texts = ["The man said he would come back.", "Ünïcödé — 東京 🙂, tabs\tand  double spaces", "an entirely unseen word: qwzxv"];
  for (const t of texts) {
    const e = tok.encode(t);
    assert.equal(e.tokens[0], "<s>");
    assert.equal(e.tokens.at(-1), "</s>");
    assert.ok(!e.ids.includes(3), `no <unk> in ${JSON.stringify(t)}`);
    assert.equal(tok.decode(e.ids, { skip_special_tokens: true }), t);
  }
  assert.equal(tok.encode(" the", { add_special_tokens: false }).tokens.length, 1, "a frequent word is one token");

  const root = tempDir("tenslora-bpe-");
  mkdirSync(join(root, "brown-bpe"));
  writeFileSync(join(root, "brown-bpe", "tokenizer.json"), JSON.stringify(json));
  writeFileSync(join(root, "brown-bpe", "tokenizer_config.json"), JSON.stringify(config));
  env.allowRemoteModels = false;
  env.localModelPath = root;
  const tjs = await AutoTokenizer.from_pretrained("brown-bpe");
  const enc = await tjs(texts, { padding: true });
  const ids = enc.input_ids.tolist() as bigint[][];
  const longest = Math.max(...texts.map((t) => tok.encode(t).ids.length));
  texts.forEach((t, r) => {
    const ours = tok.encode(t).ids;
    assert.deepEqual(ids[r].slice(0, ours.length).map(Number), ours, `ids of ${JSON.stringify(t)}`);
    assert.deepEqual(ids[r].slice(ours.length).map(Number), new Array(longest - ours.length).fill(1), "padded with <pad> = 1");
  });
  assert.equal(tjs.mask_token_id, model.vocab.get("<mask>"));
});
