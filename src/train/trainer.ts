/**
 * The training loop, in nanoGPT's order: setup, then per step {lr → fwd/bwd in one ONNX Runtime
 * call → AdamW → log → eval + save}. Graphs have one fixed batch shape (short batches are padded
 * with ignored rows), the data order of epoch e is a seeded permutation, and checkpoints hold
 * everything else, so a resumed run ends with the same bytes as an uninterrupted one.
 */
import { type AdapterSet, zeroInitializedTensors } from "../adapters/adapter-set.ts";
import { ConfigError, NonFiniteLossError } from "../errors.ts";
import { hashOf } from "../ir/hash.ts";
import { buildModelGraph, type TrainableSet } from "../pipeline/build.ts";
import type { LoadedModel } from "../models/assemble.ts";
import type { HostTensor } from "../tensor/host.ts";
import type { CompiledGraph, Runtime } from "../runtime/types.ts";
import { Rng } from "../tensor/random.ts";
import { taskOf } from "../tasks/index.ts";
import { type AdamWState, adamw, clipByGlobalNorm, flattenParams, segmentViews } from "./optim.ts";
import { warmupCosine } from "./schedule.ts";
import type { RunStore } from "./run-store.ts";
import type { TaskData } from "../tasks/task-data.ts";
import { checkValFraction, splitValidation } from "./validation.ts";

/** The trainer's settings: epochs, batch size, learning-rate schedule, optimiser, evaluation and checkpoints. */
export interface TrainConfig {
  lr: number;
  weightDecay: number;
  epochs: number;
  batchSize: number;
  /** Fraction of the steps spent in linear warm-up. */
  warmup: number;
  minLr: number;
  seed: number;
  /** Evaluate every N steps; 0 = after every epoch. */
  evalEvery: number;
  /** Checkpoint every N steps; 0 = after every epoch. */
  saveEvery: number;
  /** Clip the global gradient norm; 0 = off (the paper does not clip). */
  maxGradNorm: number;
  /** The task's selection metric (classification: accuracy, mcc, …; causal LM: perplexity, …). */
  metric: string;
  /** Hidden/attention dropout during training (the paper uses 0). */
  dropout: number;
  threads?: number;
  /**
   * Hold out this fraction of the training data (per class where there are classes, seeded by
   * `seed`) and select the best evaluation on it; 0 or absent: select on the test split, as the
   * paper does.
   */
  valFraction?: number;
  /** Multiplies the learning rate of each adapter tensor that starts at zero (Tucker core, LoRA B), as TensLoRA+ and LoRA+ do; absent = 1. */
  coreLrScale?: number;
  /** Recompute each layer's activations in the backward pass instead of keeping them (less memory, about a third more time). */
  checkpointActivations?: boolean;
  /** Causal LM: logits and loss this many positions at a time; 0 = whole; absent = chunked when the logits are large. */
  lossChunk?: number;
}

/** Progress events `train` emits: steps, evaluations, checkpoints, the end. */
export type TrainEvent =
  | { type: "step"; step: number; total: number; epoch: number; loss: number; lr: number; samplesPerSec: number; etaSec: number }
  | {
      type: "eval";
      step: number;
      epoch: number;
      /** The selection metric's name: `value` and `validation` are of it. */
      metric: string;
      metrics: Record<string, unknown>;
      summary: string;
      value: number;
      validation?: number;
      best: boolean;
    }
  | { type: "checkpoint"; step: number; path: string };

/** Everything `train` needs: model, adapter, data, settings, a run store and a runtime. */
export interface RunSetup {
  model: LoadedModel;
  adapter?: AdapterSet;
  trainable: TrainableSet;
  data: TaskData;
  config: TrainConfig;
  /** The metrics log, checkpoints and trained weights (run-folder-store.ts: a folder; run-store.ts: memory). */
  store: RunStore;
  /** The ONNX Runtime package that runs the graphs (session.ts: Node; session-web.ts: browser). */
  runtime: Runtime;
  /** Continue from the store's newest checkpoint. */
  resume?: boolean;
  /** Damaged checkpoints skipped on resume are reported here. */
  warn?: (s: string) => void;
  /** Progress events: steps, evaluations, checkpoints. */
  onEvent?: (e: TrainEvent) => void;
  /** Polled between steps (signals arrive there, since ONNX Runtime blocks the event loop while it runs). */
  shouldStop?: () => boolean;
}

/** What a training run returns: steps done, the selected and best evaluations, and where it stopped. */
export interface RunResult {
  interrupted: boolean;
  steps: number;
  /**
   * The selected evaluation: the best on the validation split when there is one (`value` is the
   * validation metric, `test` the test metric at that step), else the best on test.
   */
  best: { value: number; step: number; test: number; metrics: Record<string, unknown> } | null;
  /** The best test metric over all evaluations (the paper's reporting). */
  bestTest: { value: number; step: number } | null;
  /** Examples held out for validation (0 without a validation split). */
  validationSize: number;
  /** The last evaluation's metrics (classification: a MetricsSummary) and selection value. */
  final: Record<string, unknown> | null;
  finalValue: number;
  /** The selection metric. */
  metric: string;
  /** Median seconds per optimiser step (forward, backward and update). */
  stepSeconds: number;
  trainableParams: number;
  /** Training images that stopped decoding after the up-front check (each warned once; their examples were left out). */
  skippedImages: string[];
}

function epochOrder(seed: number, epoch: number, n: number): Int32Array {
  return new Rng((Math.imul(seed + 1, 0x9e3779b1) ^ epoch) >>> 0).permutation(n);
}

/** Train a model's adapter and/or head on a task: resumable, checkpointed, evaluating as it goes; the library's training loop. */
export async function train(setup: RunSetup): Promise<RunResult> {
  const { model, adapter, config: cfg, store: runStore } = setup;
  checkValFraction(cfg.valFraction ?? 0);
  const held = cfg.valFraction ? splitValidation(setup.data, cfg.valFraction, cfg.seed) : null;
  const data = held?.data ?? setup.data;
  const task = taskOf(model.family.task);
  if (!task.metrics.includes(cfg.metric)) throw new ConfigError(`metric "${cfg.metric}" does not apply to ${task.name}; valid: ${task.metrics.join(", ")}`);
  const emit = setup.onEvent ?? (() => {});
  const B = cfg.batchSize;
  const n = data.size("train");
  const stepsPerEpoch = Math.ceil(n / B);
  const total = stepsPerEpoch * cfg.epochs;
  if (total < 1) throw new ConfigError(`nothing to train: ${n} examples, ${cfg.epochs} epochs`);
  // a quantized base is part of what a checkpoint belongs to (absent for float32, as before it existed)
  const base = model.baseDtype && model.baseDtype !== "f32" ? { baseDtype: model.baseDtype } : {};
  const configHash = hashOf(JSON.stringify({ cfg: { ...cfg, threads: undefined }, trainable: setup.trainable, adapter: adapter?.config, ...base }));

  // setup: one graph to train, one to evaluate, sharing one external copy of the frozen weights
  const dropout = cfg.dropout > 0 ? { hidden: cfg.dropout, attention: cfg.dropout, seed: cfg.seed } : undefined;
  const trainSpec = { model, adapter, batch: B, seqLen: data.seqLen, trainable: setup.trainable };
  // masks are fed from a stream keyed by (seed, step, site), so a resumed run replays them
  const built = buildModelGraph({
    ...trainSpec,
    loss: true,
    targetSize: data.targetSize,
    grads: true,
    dropout,
    feedMasks: true,
    checkpointActivations: cfg.checkpointActivations,
    lossChunk: cfg.lossChunk ?? "auto",
  });
  const masks = built.masks.map((m) => ({ ...m, data: new Float32Array(m.shape.reduce((a, b) => a * b, 1)) }));
  const maskFeeds = (s: number): Record<string, HostTensor> => {
    for (const m of masks) {
      const rng = new Rng((Math.imul(cfg.seed + 1, 0x85ebca6b) ^ Math.imul(s + 1, 0xc2b2ae35) ^ m.key) >>> 0);
      const keep = 1 - m.p;
      for (let i = 0; i < m.data.length; i++) m.data[i] = rng.uniform() < keep ? 1 / keep : 0;
    }
    return Object.fromEntries(masks.map((m) => [m.name, { dtype: "float32", shape: m.shape, data: m.data }]));
  };
  const evalBuilt = buildModelGraph({ ...trainSpec, trainable: setup.trainable });
  const compiler = setup.runtime.compiler();
  // compiled at the first evaluation: a run that evaluates only at its end releases the training
  // session first, so the two never hold the frozen weights at once (a backend that copies them
  // into each session, as WebAssembly does, then needs room for one copy, not two); an exclusive
  // runtime also releases each session around every evaluation
  const exclusive = setup.runtime.exclusiveSessions === true;
  const compileTrain = () => compiler.compile(built.graph, { threads: cfg.threads });
  let trainGraph: CompiledGraph | undefined = await compileTrain();
  let evalGraph: CompiledGraph | undefined;

  const { flat, layout } = flattenParams(new Map(built.trainable.map((k) => [k, built.weights.get(k)!.data])));
  const views = segmentViews(flat, layout);
  const grads = new Float32Array(layout.size);
  const coreLrScale = cfg.coreLrScale ?? 1;
  if (!(coreLrScale > 0)) throw new ConfigError(`--core-lr-scale must be a positive number, got ${coreLrScale}`);
  const startAtZero = adapter ? zeroInitializedTensors(adapter) : new Set<string>();
  const opt = adamw({ weightDecay: cfg.weightDecay, groups: coreLrScale === 1 ? [] : [{ match: (k: string) => startAtZero.has(k), lrScale: coreLrScale }] });
  let state: AdamWState = opt.init(layout);
  const schedule = warmupCosine({ baseLr: cfg.lr, minLr: cfg.minLr, totalSteps: total, warmupSteps: Math.round(cfg.warmup * total) });
  const paramFeeds = (): Record<string, HostTensor> =>
    Object.fromEntries(built.trainable.map((k) => [k, { dtype: "float32", shape: built.weights.get(k)!.shape, data: views.get(k)! }]));
  const feedsOf = (inputs: Record<string, HostTensor>) => ({ ...model.family.feeds(model.config, inputs), ...paramFeeds() });

  let step = 0;
  let best: RunResult["best"] = null;
  let bestTest: RunResult["bestTest"] = null;
  if (setup.resume) {
    const ck = runStore.loadCheckpoint(setup.warn);
    if (ck.state.configHash !== configHash)
      throw new ConfigError(`${ck.dir} was written by a run with another configuration; resume with the same flags or start a new --out`);
    flat.set(ck.tensors.params);
    state = opt.loadStateTensors(layout, Object.fromEntries(Object.entries(ck.tensors).filter(([k]) => k !== "params")), ck.state.optimizer);
    step = ck.state.step;
    best = ck.state.best ? { ...ck.state.best, test: ck.state.best.test ?? ck.state.best.value, metrics: null as never } : null;
    bestTest = ck.state.bestTest ?? null;
  }
  runStore.startLog(setup.resume ? step : undefined);
  const log = runStore.log;
  const trained = () => {
    const weights = new Map(
      built.trainable.filter((k) => !adapter?.tensors.has(k)).map((k) => [k, { shape: built.weights.get(k)!.shape, data: views.get(k)!.slice() }]),
    );
    const set = adapter && {
      ...adapter,
      tensors: new Map([...adapter.tensors].map(([k, t]) => [k, { shape: t.shape, data: views.get(k)?.slice() ?? t.data }])),
    };
    return { adapter: set, weights };
  };
  const checkpoint = () => {
    const tensors = { params: flat, ...opt.stateTensors(state).tensors };
    const path = runStore.saveCheckpoint({
      state: { step, best: best && { value: best.value, step: best.step, test: best.test }, bestTest, optimizer: opt.stateTensors(state).scalars, configHash },
      tensors,
    });
    emit({ type: "checkpoint", step, path });
  };
  let lastEval: { metrics: Record<string, unknown>; value: number } | null = null;
  const evaluate = async () => {
    if (step === total || exclusive) {
      trainGraph?.dispose();
      trainGraph = undefined;
    }
    evalGraph ??= await compiler.compile(evalBuilt.graph, { threads: cfg.threads });
    const ev = await task.evaluate(data, "test", evalGraph, B, feedsOf, cfg.metric);
    const val = held ? await task.evaluate(held.validation, "test", evalGraph, B, feedsOf, cfg.metric) : null;
    if (exclusive) {
      evalGraph.dispose();
      evalGraph = undefined;
    }
    const better = (a: number, b: number) => (task.higherIsBetter(cfg.metric) ? a > b : a < b);
    const chosen = val ?? ev;
    // a validation set of a few dozen examples ties often: the later evaluation (more training) wins
    const isBest = !best || better(chosen.value, best.value) || (val !== null && chosen.value === best.value);
    if (isBest) {
      best = { value: chosen.value, step, test: ev.value, metrics: chosen.metrics };
      runStore.saveTrained("best", model, trained());
    }
    if (!bestTest || better(ev.value, bestTest.value)) bestTest = { value: ev.value, step };
    lastEval = ev;
    const epoch = step / stepsPerEpoch;
    log({ type: "eval", step, epoch, [cfg.metric]: ev.value, ...ev.log, ...(val ? { [`val_${cfg.metric}`]: val.value } : {}) });
    emit({
      type: "eval",
      step,
      epoch,
      metric: cfg.metric,
      metrics: ev.metrics,
      summary: ev.summary,
      value: ev.value,
      ...(val ? { validation: val.value } : {}),
      best: isBest,
    });
  };

  const times: number[] = [];
  const skippedImages = new Set<string>();
  let interrupted = false;
  const batchAt = (s: number) => {
    const e = Math.floor(s / stepsPerEpoch);
    const b = s % stepsPerEpoch;
    const order = epochOrder(cfg.seed, e, n);
    const idx = order.subarray(b * B, Math.min((b + 1) * B, n));
    return { idx, promise: data.batch("train", idx, B, (cfg.seed * 7919 + e) >>> 0) };
  };
  let next = step < total ? batchAt(step) : undefined;
  try {
    while (step < total) {
      const { idx, promise } = next!;
      const batch = await promise;
      next = step + 1 < total ? batchAt(step + 1) : undefined; // decode the next batch while this one runs
      for (const s of batch.skipped ?? []) {
        if (skippedImages.has(s.path)) continue;
        skippedImages.add(s.path);
        setup.warn?.(`step ${step + 1}: ${s.reason} Its example is skipped (${skippedImages.size} image(s) skipped during training).`);
      }
      const skippedRows = batch.skipped?.length ?? 0;
      const lr = schedule(step);
      trainGraph ??= await compileTrain(); // released by an exclusive runtime's evaluation
      const t0 = performance.now();
      // a batch none of whose images decodes changes nothing: the step passes without an update
      let loss: number | null = null;
      if (skippedRows < batch.valid) {
        const out = await trainGraph.run({ ...feedsOf(batch.inputs), ...maskFeeds(step), labels: batch.labels, ...(batch.target && { target: batch.target }) });
        loss = Number(out.loss.data[0]);
        if (!Number.isFinite(loss)) {
          const last = runStore.lastCheckpoint() ?? "none (no checkpoint was written yet)";
          throw new NonFiniteLossError(
            `the loss became ${loss} at step ${step + 1} (epoch ${Math.floor(step / stepsPerEpoch) + 1}, batch examples [${Array.from(idx).join(", ")}]); ` +
              `last good checkpoint: ${last}. Lower --lr or enable --max-grad-norm.`,
          );
        }
        for (const s of layout.segments) grads.set(out[`grad.${s.name}`].data as Float32Array, s.offset);
        if (cfg.maxGradNorm > 0) clipByGlobalNorm(grads, cfg.maxGradNorm);
        opt.update(state, flat, grads, lr);
      }
      step++;
      const dt = (performance.now() - t0) / 1000;
      const epoch = Math.floor((step - 1) / stepsPerEpoch) + 1;
      log({ type: "train", step, epoch, ...(loss === null ? {} : { loss }), lr, ...(skippedRows ? { skipped_images: skippedRows } : {}) });
      if (loss !== null) {
        times.push(dt);
        emit({ type: "step", step, total, epoch, loss, lr, samplesPerSec: batch.valid / dt, etaSec: median(times.slice(-ETA_WINDOW)) * (total - step) });
      }
      const epochEnd = step % stepsPerEpoch === 0;
      if ((cfg.evalEvery > 0 ? step % cfg.evalEvery === 0 : epochEnd) || step === total) await evaluate();
      if (setup.shouldStop?.()) {
        checkpoint();
        interrupted = true;
        break;
      }
      if ((cfg.saveEvery > 0 ? step % cfg.saveEvery === 0 : epochEnd) && step < total) checkpoint();
    }
    if (!interrupted) {
      runStore.saveTrained("last", model, trained());
      if (!lastEval && total > 0) await evaluate();
    }
  } finally {
    trainGraph?.dispose();
    evalGraph?.dispose();
    compiler.dispose();
  }
  const last = lastEval as { metrics: Record<string, unknown>; value: number } | null;
  return {
    interrupted,
    steps: step,
    best,
    bestTest,
    validationSize: held?.validationIndices.length ?? 0,
    final: last?.metrics ?? null,
    finalValue: last?.value ?? Number.NaN,
    metric: cfg.metric,
    stepSeconds: median(times.slice(Math.min(2, times.length - 1))),
    trainableParams: layout.size,
    skippedImages: [...skippedImages],
  };
}

/** The ETA takes the median of the last steps only: sorting every past step time made each step slower than the one before. */
const ETA_WINDOW = 64;

function median(xs: number[]): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
