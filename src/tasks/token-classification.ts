/**
 * Token classification (named entities, part-of-speech tags): logits [B, T, labels] against one
 * label per word, on the word's first sub-token (the rest, special tokens and padding −100, as
 * HuggingFace's token-classification recipe aligns them). Evaluation reads the words' tags back
 * from those positions: token accuracy over words, and a tag F1 — seqeval's entity-level micro F1
 * when the labels are chunk tags (B-/I- …: an entity counts only when its whole span and type
 * are right, what NER is judged by), otherwise scikit-learn's macro F1 over the tags (POS: each
 * tag weighs the same, so rare tags count beside the frequent ones that dominate accuracy).
 */
import { ConfigError, DataError } from "../errors.ts";
import * as b from "../ir/builder.ts";
import { crossEntropy } from "../ir/functional.ts";
import type { Value } from "../ir/graph.ts";
import { accuracy, confusionMatrix, macroPrecisionRecallF1, percent } from "./metrics.ts";
import { type EvalSplit, IGNORE_LABEL } from "./task-data.ts";
import { entityScores, isChunkTagSet } from "./seqeval.ts";
import { type EvalReport, type TaskSpec, tokenLogitBatches } from "./types.ts";

export const TOKEN_METRICS = ["accuracy", "f1"] as const;

/** Mean cross-entropy of logits [B, T, C] over the labels [B, T] that are not −100. */
export function tokenClassificationLoss(logits: Value, labels: Value): Value {
  const C = logits.shape[2] as number;
  return crossEntropy(b.reshape(logits, [-1, C]), b.reshape(labels, [-1]));
}

/** Each sentence's gold and predicted tag ids at its labelled positions, in order. */
export interface TaggedSentences {
  gold: number[][];
  pred: number[][];
}

/** Add one batch's argmax tags (logits [B, T, C], labels [B, T]) of its first `valid` rows. */
export function collectTags(into: TaggedSentences, logits: Float32Array, labels: BigInt64Array, valid: number, T: number, C: number): void {
  for (let r = 0; r < valid; r++) {
    const gold: number[] = [];
    const pred: number[] = [];
    for (let t = 0; t < T; t++) {
      const y = Number(labels[r * T + t]);
      if (y === IGNORE_LABEL) continue;
      const o = (r * T + t) * C;
      let best = 0;
      for (let c = 1; c < C; c++) if (logits[o + c] > logits[o + best]) best = c;
      gold.push(y);
      pred.push(best);
    }
    into.gold.push(gold);
    into.pred.push(pred);
  }
}

export interface TokenMetrics {
  accuracy: number;
  f1: number;
  /** "entity": seqeval's micro F1 over chunks; "macro": the mean F1 over tags. */
  f1Kind: "entity" | "macro";
  precision: number;
  recall: number;
  /** Words scored. */
  tokens: number;
  sentences: number;
}

export function tokenMetrics(tags: TaggedSentences, names: readonly string[]): TokenMetrics {
  const gold = tags.gold.flat();
  const pred = tags.pred.flat();
  if (gold.length === 0) throw new DataError("the evaluation split has no labelled words (every label is −100); give it tagged sentences");
  const cm = confusionMatrix(pred, gold, names.length);
  const chunks = isChunkTagSet(names);
  const f = chunks
    ? entityScores(
        tags.gold.map((s) => s.map((i) => names[i])),
        tags.pred.map((s) => s.map((i) => names[i])),
      )
    : macroPrecisionRecallF1(cm);
  return {
    accuracy: accuracy(cm),
    f1: f.f1,
    f1Kind: chunks ? "entity" : "macro",
    precision: f.precision,
    recall: f.recall,
    tokens: gold.length,
    sentences: tags.gold.length,
  };
}

/** A token classifier's metrics over the words of a split, as `eval` reports them. */
export interface TokenEvalResult extends TokenMetrics {
  task: "token-classification";
  split: EvalSplit;
  classNames: string[];
}

const evalReport: EvalReport<TokenEvalResult> = {
  batchSize: 64,
  result: (ev, split, classNames) => ({ task: "token-classification", split, classNames, ...(ev.metrics as unknown as TokenMetrics) }),
  table: (r) => {
    const f1 = r.f1Kind === "entity" ? "entity F1 (seqeval, micro)" : "macro tag F1      ";
    return [
      `${r.split} split: ${r.tokens} words in ${r.sentences} sentences, ${r.classNames.length} tags`,
      `token accuracy              ${percent(r.accuracy)}%`,
      `${f1.padEnd(27)} ${percent(r.f1)}`,
      `precision                   ${percent(r.precision)}`,
      `recall                      ${percent(r.recall)}`,
    ].join("\n");
  },
};

export const tokenClassification: TaskSpec = {
  name: "token-classification",
  peftTaskType: "TOKEN_CLS",
  input: "text",
  dataKind: "tokens",
  pickedByData: true,
  evalReport,
  generates: false,
  // BERT-style fine-tuning recipes warm up over the first 10 % of the steps
  defaultWarmup: 0.1,
  trainsHeadWithAdapter: true,
  labelShape: (batch, seqLen) => [batch, seqLen ?? 1],
  loss: tokenClassificationLoss,
  metrics: TOKEN_METRICS,
  higherIsBetter: () => true,
  async evaluate(data, split, graph, B, feedsOf, metric) {
    if (!(TOKEN_METRICS as readonly string[]).includes(metric))
      throw new ConfigError(`unknown metric "${metric}" for token-classification; valid: ${TOKEN_METRICS.join(", ")}`);
    const tags: TaggedSentences = { gold: [], pred: [] };
    for await (const b of tokenLogitBatches(data, split, graph, B, feedsOf)) collectTags(tags, b.logits, b.labels, b.valid, b.T, b.C);
    const m = tokenMetrics(tags, data.classNames!);
    const f1Name = m.f1Kind === "entity" ? "entity F1" : "macro tag F1";
    return {
      metrics: { ...m },
      value: metric === "f1" ? m.f1 : m.accuracy,
      summary: `token accuracy ${(100 * m.accuracy).toFixed(2)} %, ${f1Name} ${(100 * m.f1).toFixed(2)} over ${m.tokens} words in ${m.sentences} sentences`,
      log: { accuracy: m.accuracy, f1: m.f1, precision: m.precision, recall: m.recall },
    };
  },
};
