/**
 * A task: what a model's logits mean, how they are scored against labels, and what a trained
 * model is judged by. The trainer, eval, infer, compare and merge go through this interface, so
 * a new task is one module plus a line in the registry (index.ts).
 */
import { FormatError } from "../errors.ts";
import type { Dim } from "../ir/dtype-shape.ts";
import type { Value } from "../ir/graph.ts";
import type { HostTensor } from "../tensor/host.ts";
import type { CompiledGraph } from "../runtime/types.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import type { Task } from "../models/types.ts";
import type { EvalSplit, SplitName, TaskData } from "./task-data.ts";

/** What an evaluation reports: named numbers (JSON-safe), the one that picks the best checkpoint, and a line for people. */
export interface Evaluation {
  metrics: Record<string, unknown>;
  /** The selection metric's value; `higherIsBetter` says which way is better. */
  value: number;
  summary: string;
  /** The numbers a run logs per evaluation (metrics.jsonl). */
  log: Record<string, number | null>;
}

/**
 * What `--data` holds for a task: a split of images, of texts or of tagged words
 * (experiments/datasets.ts), or running text cut into blocks (a language model's, lm-datasets.ts).
 */
export type DataKind = "image" | "text" | "tokens" | "lm";

/** How `eval` reports a task: its default batch size, the result it returns (and `--json` prints), the table it prints. */
export interface EvalReport<R = Record<string, unknown>> {
  readonly batchSize: number;
  /** The result of an evaluation of `split`, as `eval --json` prints it. */
  result(ev: Evaluation, split: EvalSplit, classNames: string[]): R;
  /** The result as the table `eval` prints. */
  table(result: R): string;
}

/** A task: how its model is trained (labels, loss), judged (metrics, evaluation) and reported. */
export interface TaskSpec {
  readonly name: Task;
  /** PEFT's task_type for adapter_config.json (SEQ_CLS, CAUSAL_LM), when PEFT has one. */
  readonly peftTaskType?: string;
  /** The data a model of this task reads. */
  readonly input: "image" | "text";
  /** What `--data` holds for this task; absent where users bring none (the masked LM pretrains the embedded encoder). */
  readonly dataKind?: DataKind;
  /** Data of this kind picks this task's head on a model that has several (tagged words: token classification). */
  readonly pickedByData?: boolean;
  /** The folder `compare` writes into by default, where this task's benchmark has its own (so benchmarks may run in any order). */
  readonly compareFolder?: string;
  /** How `eval` reports a model of this task; absent where `eval` does not apply. */
  // biome-ignore lint/suspicious/noExplicitAny: each task's result type is its own; callers get it back from the same task
  readonly evalReport?: EvalReport<any>;
  /** The model generates tokens: its export and `generate` run one step with a KV cache. */
  readonly generates: boolean;
  /** The warm-up fraction of the steps when `--warmup` is not given (the paper's code: 0 for images, 0.1 for text). */
  readonly defaultWarmup: number;
  /** Whether "adapter+head" also trains the head (classification heads are new; an LM head is pretrained). */
  readonly trainsHeadWithAdapter: boolean;
  /** Shape of the int64 "labels" graph input for a batch. */
  labelShape(batch: Dim, seqLen: Dim | undefined): Dim[];
  /** Mean loss of `logits` against `labels` (labels −100 ignored). */
  loss(logits: Value, labels: Value): Value;
  /**
   * The loss of soft targets [B, classes] (TaskData.targetSize), added to `loss` where the data
   * carries them; absent in tasks that train on none.
   */
  targetLoss?(logits: Value, target: Value): Value;
  /**
   * The same loss from the final hidden state [B, T, d] and the head, `chunk` positions at a time,
   * so that no more than [B, chunk, classes] logits exist at once, in the forward or the backward pass.
   */
  chunkedLoss?(hidden: Value, head: (hidden: Value) => Value, labels: Value, chunk: number): Value;
  /** The metric names `--metric` accepts, the first the default; and whether higher is better. */
  readonly metrics: readonly string[];
  /** Whether a higher value of `metric` is better (accuracy) or a lower one (loss, perplexity). */
  higherIsBetter(metric: string): boolean;
  /** Evaluate on a split through an eval graph whose outputs include "logits" (and "loss" when it has labels). */
  evaluate(
    data: TaskData,
    split: SplitName,
    graph: CompiledGraph,
    batchSize: number,
    feedsOf: (inputs: Record<string, HostTensor>) => Record<string, HostTensor>,
    metric: string,
  ): Promise<Evaluation>;
}

/** Refuses logits holding NaN or ±Inf: metrics over them would be silently wrong. */
export function assertFiniteLogits(logits: Float32Array, split: string): void {
  const bad = describeNonFinite(logits);
  if (bad) throw new FormatError(`the ${split} predictions have logits with ${bad}; the weights or adapter hold non-finite values, retrain or restore them`);
}

/**
 * The batches of a split through an eval graph whose "logits" are [B, T, C], with the valid rows'
 * logits checked finite: the walk the per-token tasks score.
 */
export async function* tokenLogitBatches(
  data: TaskData,
  split: SplitName,
  graph: CompiledGraph,
  B: number,
  feedsOf: (inputs: Record<string, HostTensor>) => Record<string, HostTensor>,
): AsyncGenerator<{ logits: Float32Array; labels: BigInt64Array; valid: number; T: number; C: number }> {
  const n = data.size(split);
  for (let start = 0; start < n; start += B) {
    const idx = Int32Array.from({ length: Math.min(B, n - start) }, (_, i) => start + i);
    const batch = await data.batch(split, idx, B);
    const out = await graph.run(feedsOf(batch.inputs));
    const [, T, C] = out.logits.shape as number[];
    const logits = out.logits.data as Float32Array;
    assertFiniteLogits(logits.subarray(0, batch.valid * T * C), split);
    yield { logits, labels: batch.labels.data as BigInt64Array, valid: batch.valid, T, C };
  }
}
