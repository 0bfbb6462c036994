/**
 * A fine-tune of a decoder, whatever runs the graphs: the decoder page's worker (lm-worker.ts)
 * runs it on onnxruntime-web, the tests run the same on Node's ONNX Runtime to compare. The data
 * are the caller's tokenised examples or, without a tokenizer, seeded token cycles, whose loss a
 * working adapter drives down within a few steps.
 */
import {
  DEFAULTS,
  type LmExample,
  type LmTokens,
  type LoadedModel,
  type Runtime,
  type TrainEvent,
  type Trained,
  adapterFor,
  applyConfig,
  buildLmExamples,
  heldBytes,
  holdOut,
  lmRecordsOf,
  padIdOf,
  lmTaskData,
  memoryRunStore,
  train,
  trainConfig,
} from "../src/browser.ts";
import { yielding } from "./worker-loop.ts";

export interface LmRunOptions {
  steps: number;
  /** Tokens per example: the cycles' length, or where tokenised text is cut. */
  seqLen: number;
  batch?: number;
  /** An adapter construction (lora, qkv_depth, …); default lora. */
  construction?: string;
  /** The budget: the parameters of LoRA at this rank (the constructions' ranks follow). */
  rank?: number;
  /** Per-mode ranks ("8" or "8,8,3,12") instead of the budget. */
  ranks?: string;
  /** PEFT target_modules: "all-linear" (default), names ("q_proj,v_proj") or "/regex/". */
  targetModules?: string;
  lr?: number;
  seed?: number;
  /** Evaluate every N steps; 0 or absent: once, at the end. */
  evalEvery?: number;
}

/** Tokenised training text: the examples and the evaluation's share of them, with the pad id. */
export interface LmExamples {
  train: LmExample[];
  test: LmExample[];
  padId: number;
}

export interface LmRunHooks {
  /** The data; absent: token cycles of `seqLen` tokens. */
  examples?: LmExamples;
  onEvent?: (e: TrainEvent) => void;
  /** Polled between steps: true ends the run there. */
  shouldStop?: () => boolean;
}

export interface LmRunResult {
  losses: number[];
  /** Wall seconds between consecutive step events (the graphs compile before the first). */
  stepSeconds: number[];
  /** Seconds from the call to the end: compiling the graphs, the steps and the evaluations. */
  trainSeconds: number;
  /** Evaluation loss (mean per trained token) by step. */
  evals: { step: number; loss: number }[];
  /** Stopped before its last step (the adapter of the last evaluation is kept, if any). */
  interrupted: boolean;
  /** Bytes the model holds: float32 tensors, and quantized codes + scales. */
  heldBytes: { float: number; quantized: number };
}

/**
 * Training text as examples of at most `seqLen` tokens, as `tenslora train --data` makes them: a
 * `.jsonl` name holds records (text, prompt/completion), any other name plain text (one token
 * stream cut into blocks); a seeded 10 % is held out for the evaluation.
 */
export function textExamples(
  tok: LmTokens,
  config: { padTokenId?: number; eosTokenId?: number },
  name: string,
  text: string,
  seqLen: number,
  seed = 0,
): LmExamples {
  const data = name.endsWith(".jsonl") ? { records: lmRecordsOf(text.split("\n"), name) } : { texts: [text] };
  const { examples } = buildLmExamples(tok, data, { maxLength: seqLen, truncation: true, packing: false }, name);
  return { ...holdOut(examples, seed, name, "so give more text or a shorter sequence length"), padId: padIdOf(tok, config) };
}

/** Token cycles: each example repeats a short seeded sequence, so the next token is predictable from context. */
export function cycleCorpus(vocab: number, count: number, seqLen: number, seed: number): LmExample[] {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  const cycle = Array.from({ length: 5 }, () => 1 + Math.floor(next() * Math.min(vocab - 1, 1000)));
  return Array.from({ length: count }, (_, i) => {
    const ids = Array.from({ length: seqLen }, (_, t) => cycle[(t + i) % cycle.length]);
    return { ids, labels: ids };
  });
}

/** `o.steps` steps (one epoch over the examples, repeated as often as that takes); returns the curves and the trained adapter. */
export async function lmFineTune(model: LoadedModel, o: LmRunOptions, runtime: Runtime, hooks: LmRunHooks = {}): Promise<LmRunResult & { trained?: Trained }> {
  const batch = o.batch ?? 1;
  const cfg = applyConfig(
    DEFAULTS,
    {
      construction: o.construction ?? "lora",
      isoLora: o.rank ?? 8,
      ranks: o.ranks ?? "",
      targetModules: o.targetModules ?? "all-linear",
      lr: o.lr ?? 3e-3,
      batchSize: batch,
      epochs: 1,
      warmup: 0,
      seed: o.seed ?? 0,
      valFraction: 0,
      evalEvery: o.evalEvery ?? 0,
    },
    "page",
  );
  const { adapter, trainable } = adapterFor(model, cfg);
  const count = o.steps * batch;
  let split: { train: LmExample[]; test: LmExample[] };
  if (hooks.examples) {
    const given = hooks.examples.train;
    split = { train: Array.from({ length: count }, (_, i) => given[i % given.length]), test: hooks.examples.test };
  } else {
    const corpus = cycleCorpus(model.config.vocabSize, count, o.seqLen, (o.seed ?? 0) + 1);
    split = { train: corpus, test: corpus.slice(0, batch) };
  }
  const tokens = lmTaskData(split, hooks.examples?.padId ?? 0);
  const data = hooks.shouldStop ? yielding(tokens) : tokens;
  const losses: number[] = [];
  const stepSeconds: number[] = [];
  const evals: LmRunResult["evals"] = [];
  let last = 0;
  const t0 = performance.now();
  const store = memoryRunStore();
  const result = await train({
    model,
    adapter,
    trainable,
    data,
    config: trainConfig(cfg, model.family.task),
    store,
    runtime,
    shouldStop: hooks.shouldStop,
    onEvent: (e) => {
      if (e.type === "step") {
        const now = performance.now();
        if (last) stepSeconds.push((now - last) / 1000);
        last = now;
        losses.push(e.loss);
      }
      if (e.type === "eval") evals.push({ step: e.step, loss: Number(e.metrics.loss) });
      hooks.onEvent?.(e);
    },
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  let float = 0;
  for (const t of model.weights.values()) float += t.data.byteLength;
  let quantized = 0;
  for (const q of model.quantized?.values() ?? []) quantized += heldBytes(q);
  const trained = store.trained.get("last") ?? store.trained.get("best");
  return { losses, stepSeconds, trainSeconds, evals, interrupted: result.interrupted, heldBytes: { float, quantized }, trained };
}
