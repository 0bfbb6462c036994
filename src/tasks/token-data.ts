/**
 * Tagged sentences as model batches, labels aligned to sub-word tokens as HuggingFace's
 * token-classification recipe aligns them: a word's tag on its first sub-token, −100 on its other
 * sub-tokens, on special tokens and on padding. Sentences are tokenised once up front and padded
 * to the longest (at most `maxLength` tokens; words cut off by it are not scored, and counted).
 */
import type { TextTokenizer } from "../data/tokenize.ts";
import type { Split, TaggedDataset } from "../data/types.ts";
import { ConfigError } from "../errors.ts";
import { IGNORE_LABEL, type SplitName, type TaskData, tokenRowsBatch } from "./task-data.ts";

interface Encoded {
  ids: number[];
  typeIds: number[];
  labels: number[];
}

/** One sentence's ids and aligned labels. */
export function alignTags(tokenizer: TextTokenizer, words: string[], tags: number[], maxLength: number): Encoded & { droppedWords: number } {
  const enc = tokenizer.encodeWords(words, { maxLength, truncation: true });
  const labels = enc.wordIds.map((w, i) => (w === null || (i > 0 && enc.wordIds[i - 1] === w) ? IGNORE_LABEL : tags[w]));
  return { ids: enc.ids, typeIds: enc.typeIds, labels, droppedWords: enc.droppedWords };
}

export interface TokenTaskData extends TaskData {
  /** Words that lost every sub-token to truncation (or tokenised to nothing), per split. */
  droppedWords: Record<SplitName, number>;
}

export function tokenTaskData(split: Split<TaggedDataset>, tokenizer: TextTokenizer, maxLength: number): TokenTaskData {
  const pad = tokenizer.padId;
  if (pad === null) throw new ConfigError(`token classification pads sentences, but the tokenizer names no pad token; add pad_token to tokenizer_config.json`);
  const droppedWords = { train: 0, test: 0 };
  const encode = (s: SplitName) =>
    split[s].items.map((x) => {
      const e = alignTags(tokenizer, x.words, x.tags, maxLength);
      droppedWords[s] += e.droppedWords;
      return e;
    });
  const rows = { train: encode("train"), test: encode("test") };
  const T = Math.max(...rows.train.map((r) => r.ids.length), ...rows.test.map((r) => r.ids.length));
  return {
    classNames: split.train.classNames,
    seqLen: T,
    droppedWords,
    size: (s) => rows[s].length,
    batch: async (s, indices, B) => tokenRowsBatch(rows[s], indices, B, T, pad, true),
  };
}
