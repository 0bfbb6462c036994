/**
 * Entity-level scores of tag sequences as seqeval computes them in its default (lenient) mode:
 * chunks are read from IOB1/IOB2/IOE/IOBES tags (an I- after O or after another type starts a
 * chunk), and precision, recall and F1 are micro-averaged over every chunk of every sentence, as
 * `seqeval.metrics.f1_score` and HuggingFace's token-classification recipe report them.
 */

export interface Entity {
  type: string;
  start: number;
  /** Inclusive. */
  end: number;
}

/** Whether a label set is chunk tags (every name but O carries a B-/I-/E-/S- prefix). */
export function isChunkTagSet(names: readonly string[]): boolean {
  const tagged = names.filter((n) => n !== "O");
  return tagged.length > 0 && tagged.every((n) => /^[BIES][-_]./.test(n));
}

const split = (tag: string): [string, string] => (tag === "O" || tag.length < 2 ? ["O", ""] : [tag[0], tag.slice(2)]);

function chunkEnds(prev: string, tag: string, prevType: string, type: string): boolean {
  if (prev === "E" || prev === "S") return true;
  if ((prev === "B" || prev === "I") && (tag === "B" || tag === "S" || tag === "O")) return true;
  return prev !== "O" && prevType !== type;
}

function chunkStarts(prev: string, tag: string, prevType: string, type: string): boolean {
  if (tag === "B" || tag === "S") return true;
  if ((prev === "E" || prev === "S" || prev === "O") && (tag === "E" || tag === "I")) return true;
  return tag !== "O" && prevType !== type;
}

/** The chunks of one sentence's tags. */
export function entities(tags: readonly string[]): Entity[] {
  const out: Entity[] = [];
  let prev = "O";
  let prevType = "";
  let start = 0;
  for (let i = 0; i <= tags.length; i++) {
    const [tag, type] = i < tags.length ? split(tags[i]) : ["O", ""];
    if (chunkEnds(prev, tag, prevType, type) && prev !== "O") out.push({ type: prevType, start, end: i - 1 });
    if (chunkStarts(prev, tag, prevType, type)) start = i;
    [prev, prevType] = [tag, type];
  }
  return out;
}

export interface EntityScores {
  precision: number;
  recall: number;
  f1: number;
  /** Chunks in the gold tags. */
  support: number;
}

/** Micro precision, recall and F1 over the chunks of every sentence (0 where a denominator is 0). */
export function entityScores(gold: readonly (readonly string[])[], pred: readonly (readonly string[])[]): EntityScores {
  const key = (s: number, e: Entity) => `${s}:${e.type}:${e.start}:${e.end}`;
  const truth = new Set(gold.flatMap((tags, s) => entities(tags).map((e) => key(s, e))));
  const guessed = pred.flatMap((tags, s) => entities(tags).map((e) => key(s, e)));
  const tp = guessed.filter((k) => truth.has(k)).length;
  const precision = guessed.length ? tp / guessed.length : 0;
  const recall = truth.size ? tp / truth.size : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1, support: truth.size };
}
