/**
 * A byte-level BPE vocabulary learned from text, written as a RoBERTa `tokenizer.json` that
 * `@huggingface/tokenizers` and transformers.js load (neither can train one).
 *
 * Training is Sennrich et al.'s algorithm as HF's BpeTrainer runs it on byte-level words: the text
 * is split into words by the ByteLevel pre-tokenizer of `@huggingface/tokenizers` itself (so
 * training and encoding see the same words), every word starts as its byte symbols, and the most
 * frequent adjacent pair (weighted by word count; ties to the lexicographically smaller pair) is
 * merged until the vocabulary is full. All 256 byte symbols are in the vocabulary, so any text
 * encodes without an unknown token.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { ConfigError } from "../errors.ts";

/** RoBERTa's special tokens: the first four take ids 0–3, `<mask>` the last id. */
export const ROBERTA_SPECIALS = { bos: "<s>", pad: "<pad>", eos: "</s>", unk: "<unk>", mask: "<mask>" } as const;
const ROBERTA_SPECIAL_LIST: string[] = Object.values(ROBERTA_SPECIALS);

export interface BpeModel {
  /** Token → id, specials included. */
  vocab: Map<string, number>;
  /** Merges in rank order, as "left right". */
  merges: [string, string][];
}

const BYTE_LEVEL = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true } as const;

/** The library's ByteLevel pre-tokenizer (reached through a tokenizer: the package's types do not export its class). */
function byteLevel(): { pre_tokenize_text(text: string): string[]; byte_encoder: Record<number, string> } {
  const tok = new Tokenizer(robertaTokenizerJson({ vocab: new Map(ROBERTA_SPECIAL_LIST.map((t, i) => [t, i])), merges: [] }), {});
  return tok.pre_tokenizer as unknown as ReturnType<typeof byteLevel>;
}

/** The 256 byte symbols of byte-level BPE, in byte order (GPT-2's bytes_to_unicode). */
export function byteSymbols(): string[] {
  const pre = byteLevel();
  return Array.from({ length: 256 }, (_, i) => pre.byte_encoder[i]);
}

/** Words (byte-level strings) of `texts` with their counts. */
export function wordCounts(texts: Iterable<string>): Map<string, number> {
  const pre = byteLevel();
  const counts = new Map<string, number>();
  for (const text of texts) for (const w of pre.pre_tokenize_text(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

/**
 * Learn merges until the vocabulary (5 specials, 256 bytes, one token per merge) holds
 * `vocabSize` tokens, or no pair occurs `minCount` times.
 */
export function trainBpe(texts: Iterable<string>, vocabSize: number, minCount = 2): BpeModel {
  const base = ROBERTA_SPECIAL_LIST.length + 256;
  if (!Number.isInteger(vocabSize) || vocabSize < base)
    throw new ConfigError(`a byte-level BPE vocabulary needs at least ${base} tokens (5 specials + 256 bytes), got ${vocabSize}`);
  const words: { symbols: string[]; count: number }[] = [];
  for (const [w, count] of wordCounts(texts)) words.push({ symbols: [...w], count });
  const SEP = " "; // byte-level symbols never hold a space (it maps to Ġ)
  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1) => {
    const { symbols, count } = words[wi];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = symbols[i] + SEP + symbols[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * count);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  words.forEach((_, wi) => addPairs(wi, 1));
  const merges: [string, string][] = [];
  while (base + merges.length < vocabSize) {
    let best = "";
    let bestCount = minCount - 1;
    for (const [key, c] of pairCount) {
      if (c > bestCount || (c === bestCount && c >= minCount && key < best)) {
        best = key;
        bestCount = c;
      }
    }
    if (!best) break;
    const [left, right] = best.split(SEP);
    const merged = left + right;
    for (const wi of pairWords.get(best)!) {
      addPairs(wi, -1);
      const s = words[wi].symbols;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
          out.push(merged);
          i++;
        } else out.push(s[i]);
      }
      words[wi].symbols = out;
      addPairs(wi, 1);
    }
    pairCount.delete(best);
    pairWords.delete(best);
    merges.push([left, right]);
  }
  const vocab = new Map<string, number>();
  for (const t of [
    ROBERTA_SPECIALS.bos,
    ROBERTA_SPECIALS.pad,
    ROBERTA_SPECIALS.eos,
    ROBERTA_SPECIALS.unk,
    ...byteSymbols(),
    ...merges.map(([a, b]) => a + b),
  ]) {
    if (!vocab.has(t)) vocab.set(t, vocab.size);
  }
  vocab.set(ROBERTA_SPECIALS.mask, vocab.size);
  return { vocab, merges };
}

/** tokenizer.json of RoBERTa's layout (ByteLevel pre-tokenizer and decoder, RobertaProcessing) for `model`. */
export function robertaTokenizerJson(model: BpeModel): Record<string, unknown> {
  const s = ROBERTA_SPECIALS;
  const added = ROBERTA_SPECIAL_LIST.map((content) => ({
    id: model.vocab.get(content)!,
    content,
    single_word: false,
    lstrip: content === s.mask,
    rstrip: false,
    normalized: content !== s.mask,
    special: true,
  }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: {
      type: "RobertaProcessing",
      sep: [s.eos, model.vocab.get(s.eos)],
      cls: [s.bos, model.vocab.get(s.bos)],
      trim_offsets: true,
      add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(model.vocab),
      merges: model.merges,
    },
  };
}

/** tokenizer_config.json naming the tokens and the longest input (`maxLength` tokens, specials included). */
export function robertaTokenizerConfig(maxLength: number): Record<string, unknown> {
  const s = ROBERTA_SPECIALS;
  return {
    tokenizer_class: "RobertaTokenizer",
    add_prefix_space: false,
    bos_token: s.bos,
    eos_token: s.eos,
    sep_token: s.eos,
    cls_token: s.bos,
    unk_token: s.unk,
    pad_token: s.pad,
    mask_token: s.mask,
    model_max_length: maxLength,
  };
}
