/**
 * A WordPiece tokenizer for the tiny BERT fixtures (which ship none) and tagged sentences over
 * its words: BERT's normaliser (lower case), pre-tokeniser and [CLS] A [SEP] B [SEP] template
 * with token types 0 / 1, written as tokenizer.json + vocab.txt + tokenizer_config.json the way
 * HF's BertTokenizerFast saves them. Words outside the vocabulary split into ##pieces.
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../src/tensor/random.ts";

export const BERT_FIXTURES = "test/fixtures/hf-tiny-bert";

const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/** Word classes of the tagging task; "runs" and "played" etc. are split into pieces by WordPiece. */
export const DETERMINERS = ["the", "a", "this", "every"];
export const NOUNS = ["cat", "dog", "bird", "man", "house", "tree", "car", "city"];
export const VERBS = ["run", "walk", "play", "see", "like", "jump"];
export const ADJECTIVES = ["big", "red", "old", "happy", "small", "green"];
const PIECES = ["##s", "##ed", "##ing", "un", "##believ", "##able", "."];
const VOCAB = [...SPECIALS, ...DETERMINERS, ...NOUNS, ...VERBS, ...ADJECTIVES, ...PIECES];

export function bertTokenizerJson(): object {
  const vocab = Object.fromEntries(VOCAB.map((w, i) => [w, i]));
  const special = (content: string) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tok = (id: string, type: number) => ({ SpecialToken: { id, type_id: type } });
  const seq = (id: "A" | "B", type: number) => ({ Sequence: { id, type_id: type } });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0)],
      pair: [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0), seq("B", 1), tok("[SEP]", 1)],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [vocab["[CLS]"]], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [vocab["[SEP]"]], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
}

/** A copy of a tiny BERT fixture (bert_seq, bert_tok) with the WordPiece tokenizer files added. */
export function bertWithTokenizer(name: "bert_seq" | "bert_tok", dir: string): string {
  mkdirSync(dir, { recursive: true });
  const src = join(BERT_FIXTURES, name);
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dir, f));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(bertTokenizerJson()));
  writeFileSync(join(dir, "vocab.txt"), `${VOCAB.join("\n")}\n`);
  const config = {
    tokenizer_class: "BertTokenizer",
    do_lower_case: true,
    pad_token: "[PAD]",
    unk_token: "[UNK]",
    cls_token: "[CLS]",
    sep_token: "[SEP]",
    mask_token: "[MASK]",
    model_max_length: 40,
  };
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
  return dir;
}

/** Seeded sentences "DET (ADJ) NOUN VERB(s|ed|ing) DET NOUN(s)" with their POS tags; inflected words are two WordPiece tokens. */
export function taggedSentences(n: number, seed: number): { tokens: string[]; tags: string[] }[] {
  const rng = new Rng(seed);
  const pick = (xs: string[]) => xs[Math.floor(rng.uniform() * xs.length)];
  const cap = (w: string) => w[0].toUpperCase() + w.slice(1);
  return Array.from({ length: n }, () => {
    const row: [string, string][] = [[cap(pick(DETERMINERS)), "DET"]];
    if (rng.uniform() < 0.5) row.push([pick(ADJECTIVES), "ADJ"]);
    row.push([pick(NOUNS), "NOUN"], [pick(VERBS) + pick(["s", "ed", "ing"]), "VERB"], [pick(DETERMINERS), "DET"]);
    row.push([pick(NOUNS) + (rng.uniform() < 0.5 ? "s" : ""), "NOUN"], [".", "PUNCT"]);
    return { tokens: row.map(([w]) => w), tags: row.map(([, t]) => t) };
  });
}

/** Tagged sentences as a JSONL file, tags under `key`. */
export function writeTagged(path: string, rows: { tokens: string[]; tags: (string | number)[] }[], key = "tags"): string {
  writeFileSync(path, rows.map((r) => JSON.stringify({ tokens: r.tokens, [key]: r.tags })).join("\n") + "\n");
  return path;
}
