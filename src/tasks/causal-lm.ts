/**
 * Causal language modelling: logits [B, T, vocab], the label of position t is token t + 1
 * (HF's shift: labels [B, T] as given, −100 never scored, so prompt and padding positions carry
 * no loss). Evaluation is token-weighted: mean negative log-likelihood over every scored token of
 * the split, its perplexity, and next-token accuracy.
 */
import { ConfigError } from "../errors.ts";
import * as b from "../ir/builder.ts";
import { grad } from "../autodiff/vjp.ts";
import { checkpoint } from "../ir/checkpoint.ts";
import { customVjp } from "../ir/custom-vjp.ts";
import { crossEntropy } from "../ir/functional.ts";
import type { Value } from "../ir/graph.ts";
import type { HostTensor } from "../tensor/host.ts";
import type { CompiledGraph } from "../runtime/types.ts";
import { percent } from "./metrics.ts";
import type { EvalSplit, SplitName, TaskData } from "./task-data.ts";
import { type EvalReport, type TaskSpec, tokenLogitBatches } from "./types.ts";

export const IGNORE_INDEX = -100;

/** labels [B, T] → the next token's label at every position ([B, T], the last −100). */
export function shiftLabels(labels: Value): Value {
  const [B, T] = labels.shape as number[];
  const pad = b.constant(labels.graph, IGNORE_INDEX, [B, 1], "int64");
  return b.concat([b.slice(labels, 1, 1, T), pad], 1);
}

/** Mean cross-entropy of logits [B, T, V] against the shifted labels. */
export function causalLmLoss(logits: Value, labels: Value): Value {
  const [B, T, V] = logits.shape as number[];
  return crossEntropy(b.reshape(logits, [B * T, V]), b.reshape(shiftLabels(labels), [B * T]));
}

/** Whether `v` is computed from `from` and frozen values only (no graph input: nothing trained, no batch data). */
function readsOnly(v: Value, from: Value): boolean {
  const inputs = new Set(v.graph.inputs);
  const seen = new Set<Value>([from]);
  const stack = [v];
  while (stack.length) {
    const x = stack.pop()!;
    if (seen.has(x)) continue;
    seen.add(x);
    if (inputs.has(x)) return false;
    if (x.producer) stack.push(...x.producer.inputs);
  }
  return true;
}

/**
 * causalLmLoss over position chunks, each chunk's logits alive only while its summed
 * cross-entropy is taken. Where the head reads nothing trainable (a frozen LM head), the chunk's
 * gradient with respect to its hidden state is taken at once, in the forward pass (a [B, chunk, d]
 * value kept, as fused linear cross-entropy does); otherwise the chunk is a checkpoint region and
 * the backward pass recomputes its logits.
 */
export function chunkedCausalLmLoss(hidden: Value, head: (hidden: Value) => Value, labels: Value, chunk: number): Value {
  const [B, T] = hidden.shape as number[];
  if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError(`the loss chunk must be a whole number of positions ≥ 1, got ${chunk}`);
  const shifted = shiftLabels(labels);
  const scored = b.reduceSum(b.cast(b.less(IGNORE_INDEX, shifted), hidden.dtype), [0, 1]);
  let total: Value | undefined;
  for (let t = 0; t < T; t += chunk) {
    const end = Math.min(T, t + chunk);
    const h = b.slice(hidden, 1, t, end);
    const logits = head(h);
    const V = logits.shape[2] as number;
    const sum = b.softmaxCrossEntropy(b.reshape(logits, [B * (end - t), V]), b.reshape(b.slice(shifted, 1, t, end), [B * (end - t)]), IGNORE_INDEX, "sum").loss;
    if (readsOnly(logits, h)) {
      const [dh] = grad(sum, [h]);
      customVjp([h], [sum], ([ct]) => [b.mul(dh, ct!)]);
    } else checkpoint([h], [sum]);
    total = total ? b.add(total, sum) : sum;
  }
  return b.div(total!, scored);
}

export const LM_METRICS = ["perplexity", "loss", "next_token_accuracy"] as const;

/** Token-weighted sums over batches: Σ −log p(label), scored tokens, correct argmax predictions. */
export interface TokenTotals {
  nll: number;
  tokens: number;
  correct: number;
}

/**
 * Add one batch's logits [B, T, V] and labels [B, T] to the totals, in float64: position t is
 * scored against label t + `shift` (1 for next-token prediction, 0 for masked tokens).
 */
export function accumulateTokens(totals: TokenTotals, logits: Float32Array, labels: BigInt64Array, B: number, T: number, V: number, shift: 0 | 1 = 1): void {
  for (let r = 0; r < B; r++) {
    for (let t = 0; t + shift < T; t++) {
      const y = Number(labels[r * T + t + shift]);
      if (y === IGNORE_INDEX) continue;
      const o = (r * T + t) * V;
      let max = -Infinity;
      let arg = 0;
      for (let v = 0; v < V; v++) {
        if (logits[o + v] > max) {
          max = logits[o + v];
          arg = v;
        }
      }
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
      totals.nll += max + Math.log(sum) - logits[o + y];
      totals.tokens++;
      if (arg === y) totals.correct++;
    }
  }
}

/** Token totals of a split through an eval graph whose "logits" are [B, T, V]. */
export async function splitTokenTotals(
  data: TaskData,
  split: SplitName,
  graph: CompiledGraph,
  B: number,
  feedsOf: (inputs: Record<string, HostTensor>) => Record<string, HostTensor>,
  shift: 0 | 1,
): Promise<TokenTotals> {
  const totals: TokenTotals = { nll: 0, tokens: 0, correct: 0 };
  // filler rows carry −100 labels, so only the valid rows are scored
  for await (const b of tokenLogitBatches(data, split, graph, B, feedsOf)) accumulateTokens(totals, b.logits, b.labels, b.valid, b.T, b.C, shift);
  return totals;
}

export function lmMetrics(t: TokenTotals): { loss: number; perplexity: number; next_token_accuracy: number; tokens: number } {
  if (t.tokens === 0) throw new ConfigError("the evaluation split has no scored tokens (every label is −100); give it text or completions to score");
  const loss = t.nll / t.tokens;
  return { loss, perplexity: Math.exp(loss), next_token_accuracy: t.correct / t.tokens, tokens: t.tokens };
}

/** A causal LM's held-out metrics (token-weighted), as `eval` reports them. */
export interface LmEvalResult {
  task: "causal-lm";
  split: EvalSplit;
  /** Sequences scored (records, or packed rows with --packing). */
  sequences: number;
  loss: number;
  perplexity: number;
  next_token_accuracy: number;
  tokens: number;
}

const evalReport: EvalReport<LmEvalResult> = {
  batchSize: 8,
  result: (ev, split) => ({ task: "causal-lm", split, ...(ev.metrics as Omit<LmEvalResult, "task" | "split">) }),
  table: (r) =>
    [
      `${r.split} split: ${r.sequences} sequences, ${r.tokens} scored tokens`,
      `perplexity           ${r.perplexity.toFixed(4)}`,
      `loss (nats/token)    ${r.loss.toFixed(4)}`,
      `next-token accuracy  ${percent(r.next_token_accuracy)}%`,
    ].join("\n"),
};

export const causalLm: TaskSpec = {
  name: "causal-lm",
  peftTaskType: "CAUSAL_LM",
  input: "text",
  dataKind: "lm",
  // the image and the language-model benchmarks default to different folders, so either may run first
  compareFolder: "runs/compare-lm",
  evalReport,
  generates: true,
  defaultWarmup: 0.1,
  trainsHeadWithAdapter: false,
  labelShape: (batch, seqLen) => [batch, seqLen ?? 1],
  loss: causalLmLoss,
  chunkedLoss: chunkedCausalLmLoss,
  metrics: LM_METRICS,
  higherIsBetter: (m) => m === "next_token_accuracy",
  async evaluate(data, split, graph, B, feedsOf, metric) {
    const m = lmMetrics(await splitTokenTotals(data, split, graph, B, feedsOf, 1));
    const value = m[metric as keyof typeof m];
    if (value === undefined) throw new ConfigError(`unknown metric "${metric}" for causal-lm; valid: ${LM_METRICS.join(", ")}`);
    return {
      metrics: { ...m, sequences: data.size(split) },
      value,
      summary: `perplexity ${m.perplexity.toFixed(3)}, loss ${m.loss.toFixed(4)}, next-token accuracy ${(100 * m.next_token_accuracy).toFixed(2)} % over ${m.tokens} tokens`,
      log: m,
    };
  },
};
