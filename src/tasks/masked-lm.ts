/**
 * Masked language modelling (BERT/RoBERTa pretraining): logits [B, T, vocab], labels [B, T]
 * holding the original token at masked positions and −100 elsewhere, with no shift. Evaluation
 * is token-weighted over the masked tokens: their mean negative log-likelihood, its perplexity
 * and the share predicted exactly. Data may give each block a soft target for its first position
 * (<s>), trained besides the masked tokens (maskedLmTargetLoss) and not scored.
 */
import { ConfigError } from "../errors.ts";
import * as b from "../ir/builder.ts";
import { crossEntropy } from "../ir/functional.ts";
import type { Value } from "../ir/graph.ts";
import { lmMetrics, splitTokenTotals } from "./causal-lm.ts";
import type { TaskSpec } from "./types.ts";

export const MLM_METRICS = ["loss", "perplexity", "masked_accuracy"] as const;

/** Mean cross-entropy of logits [B, T, V] against labels [B, T] at the masked (non −100) positions. */
export function maskedLmLoss(logits: Value, labels: Value): Value {
  const [B, T, V] = logits.shape as number[];
  return crossEntropy(b.reshape(logits, [B * T, V]), b.reshape(labels, [B * T]));
}

/**
 * The cross-entropy of the first position's (<s>'s) predicted distribution against a soft target
 * [B, V] per block, summed over the vocabulary and averaged over the B rows: Σ_v −q_v log p_v,
 * so a target of mass λ weighs λ times a full distribution and an all-zero row (a filler row)
 * nothing. Added to the masked tokens' mean, a target of mass 1 weighs as much as all of a
 * block's masked tokens together.
 */
export function maskedLmTargetLoss(logits: Value, target: Value): Value {
  const [B, , V] = logits.shape as number[];
  const logP = b.logSoftmax(b.reshape(b.slice(logits, 1, 0, 1), [B, V]));
  return b.div(b.neg(b.reduceSum(b.mul(target, logP), [0, 1])), B);
}

export const maskedLm: TaskSpec = {
  name: "masked-lm",
  input: "text",
  generates: false,
  defaultWarmup: 0.05,
  trainsHeadWithAdapter: false,
  labelShape: (batch, seqLen) => [batch, seqLen ?? 1],
  loss: maskedLmLoss,
  targetLoss: maskedLmTargetLoss,
  metrics: MLM_METRICS,
  higherIsBetter: (m) => m === "masked_accuracy",
  async evaluate(data, split, graph, B, feedsOf, metric) {
    const t = lmMetrics(await splitTokenTotals(data, split, graph, B, feedsOf, 0));
    const m = { loss: t.loss, perplexity: t.perplexity, masked_accuracy: t.next_token_accuracy, tokens: t.tokens };
    if (!(MLM_METRICS as readonly string[]).includes(metric))
      throw new ConfigError(`unknown metric "${metric}" for masked-lm; valid: ${MLM_METRICS.join(", ")}`);
    return {
      metrics: m,
      value: m[metric as (typeof MLM_METRICS)[number]],
      summary: `masked-token accuracy ${(100 * m.masked_accuracy).toFixed(2)} %, perplexity ${m.perplexity.toFixed(3)} over ${m.tokens} masked tokens`,
      log: m,
    };
  },
};
