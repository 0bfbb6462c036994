/**
 * A LoRA fine-tune of a decoder on a synthetic corpus, whatever runs the graphs: the decoder
 * page (lm-page.ts) runs it on onnxruntime-web in a tab, the tests run the same on Node's ONNX
 * Runtime to compare the step losses. The corpus is seeded token cycles, whose loss a working
 * adapter drives down within a few steps.
 */
import { DEFAULTS, type LoadedModel, type Runtime, adapterFor, applyConfig, lmTaskData, memoryRunStore, train, trainConfig } from "../src/browser.ts";

export interface LmRunOptions {
  steps: number;
  seqLen: number;
  batch?: number;
  rank?: number;
  lr?: number;
  seed?: number;
}

export interface LmRunResult {
  losses: number[];
  /** Wall seconds between consecutive step events (the graphs compile before the first). */
  stepSeconds: number[];
  /** Seconds from the call to the end: compiling the graphs, the steps and the evaluation. */
  trainSeconds: number;
  /** Bytes the model holds: float32 tensors, and quantized codes + scales. */
  heldBytes: { float: number; quantized: number };
}

/** Token cycles: each example repeats a short seeded sequence, so the next token is predictable from context. */
export function cycleCorpus(vocab: number, count: number, seqLen: number, seed: number): { ids: number[]; labels: number[] }[] {
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

/** `o.steps` LoRA steps (every linear layer, rank `o.rank`) on `model`, one epoch of the cycle corpus. */
export async function lmFineTune(model: LoadedModel, o: LmRunOptions, runtime: Runtime): Promise<LmRunResult> {
  const batch = o.batch ?? 1;
  const cfg = applyConfig(
    DEFAULTS,
    {
      construction: "lora",
      isoLora: o.rank ?? 8,
      targetModules: "all-linear",
      lr: o.lr ?? 3e-3,
      batchSize: batch,
      epochs: 1,
      warmup: 0,
      seed: o.seed ?? 0,
      valFraction: 0,
    },
    "page",
  );
  const { adapter, trainable } = adapterFor(model, cfg);
  const corpus = cycleCorpus(model.config.vocabSize, o.steps * batch, o.seqLen, (o.seed ?? 0) + 1);
  const data = lmTaskData({ train: corpus, test: corpus.slice(0, batch) }, 0);
  const losses: number[] = [];
  const stepSeconds: number[] = [];
  let last = 0;
  const t0 = performance.now();
  await train({
    model,
    adapter,
    trainable,
    data,
    config: trainConfig(cfg, model.family.task),
    store: memoryRunStore(),
    runtime,
    onEvent: (e) => {
      if (e.type !== "step") return;
      const now = performance.now();
      if (last) stepSeconds.push((now - last) / 1000);
      last = now;
      losses.push(e.loss);
    },
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  let float = 0;
  for (const t of model.weights.values()) float += t.data.byteLength;
  let quantized = 0;
  for (const q of model.quantized?.values() ?? []) quantized += q.codes.byteLength + q.scales.byteLength;
  return { losses, stepSeconds, trainSeconds, heldBytes: { float, quantized } };
}
