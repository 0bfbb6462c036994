/**
 * `step-vit` / `step-roberta`: one full training step of ViT-B/16 (224², batch 8) or RoBERTa-base
 * (sequence 128, batch 16) with random weights: frozen backbone, LoRA r=8 on q, k, v + the
 * classification head trainable, cross-entropy, AdamW in TypeScript on the trainable parameters;
 * one step = one session.run (forward, loss, backward) + the optimiser update, as the trainer
 * runs it. The same step in PyTorch eager (best and default configuration) runs in the same
 * invocation. Dropout is 0 (the paper's setting) unless `--dropout p`.
 */
import type { AdapterOptions } from "../src/adapters/config.ts";
import { createAdapter } from "../src/pipeline/context.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import type { LoadedModel } from "../src/models/load.ts";
import { WeightStore } from "../src/onnx/weight-store.ts";
import { type HostTensor, f32 } from "../src/tensor/host.ts";
import { compile, defaultProviders } from "../src/runtime/session.ts";
import type { OrtCompiledGraph } from "../src/runtime/compiled.ts";
import { Rng } from "../src/tensor/random.ts";
import { taskOf } from "../src/tasks/index.ts";
import { adamw, flattenParams, segmentViews } from "../src/train/optim.ts";
import {
  TORCH_BEST,
  TORCH_CUDA_DEFAULT,
  TORCH_CUDA_TF32,
  TORCH_DEFAULT,
  TorchPeer,
  emitJson,
  graphFlops,
  interleave,
  latestProfile,
  median,
  peakRssMiB,
  printProfile,
  ratio,
  summariseProfile,
  table,
  threads,
} from "./harness.ts";
import { matmulProbe } from "./matmul.ts";
import { ROBERTA_BASE, VIT_B16, randomModel } from "./models.ts";

export interface StepArgs {
  rounds: number;
  warmup: number;
  runs: number;
  dropout: number;
  profile?: string;
  layers?: number;
  rank: number;
  torch: boolean;
  /**
   * Where the PyTorch peers run: "cpu" (best = our thread count with OMP_WAIT_POLICY=PASSIVE,
   * default = the environment as is) or "cuda" (best = TF32, default = torch's own settings).
   */
  torchDevice: "cpu" | "cuda";
}

export function parseStepArgs(argv: string[], defaults: Partial<StepArgs> = {}): StepArgs {
  const a: StepArgs = { rounds: 1, warmup: 3, runs: 5, dropout: 0, rank: 8, torch: true, torchDevice: "cpu", ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === "--rounds") a.rounds = Number(argv[++i]);
    else if (k === "--warmup") a.warmup = Number(argv[++i]);
    else if (k === "--runs") a.runs = Number(argv[++i]);
    else if (k === "--dropout") a.dropout = Number(argv[++i]);
    else if (k === "--profile") a.profile = argv[++i];
    else if (k === "--layers") a.layers = Number(argv[++i]);
    else if (k === "--no-torch") a.torch = false;
    else if (k === "--torch-device") {
      const d = argv[++i];
      if (d !== "cpu" && d !== "cuda") throw new Error(`--torch-device ${d}: expected cpu or cuda`);
      a.torchDevice = d;
    }
  }
  return a;
}

/** Random inputs of a batch, named as the graph takes them. */
export function batchFeeds(model: LoadedModel, batch: number, seqLen: number | undefined, seed = 11): Record<string, HostTensor> {
  const rng = new Rng(seed);
  const lm = model.family.task === "causal-lm";
  const labelShape = taskOf(model.family.task).labelShape(batch, seqLen) as number[];
  const n = labelShape.reduce((x, y) => x * y, 1);
  const classes = lm ? model.config.vocabSize : model.config.numLabels;
  const labels = { dtype: "int64" as const, shape: labelShape, data: BigInt64Array.from({ length: n }, () => BigInt(rng.int(classes))) };
  if (model.family.modelType === "vit") {
    const c = model.config;
    const shape = [batch, c.numChannels, c.imageSize, c.imageSize];
    return { pixel_values: f32(shape, rng.normalArray(shape.reduce((x, y) => x * y, 1))), labels };
  }
  const T = seqLen!;
  const ids = BigInt64Array.from({ length: batch * T }, () => BigInt(3 + rng.int(model.config.vocabSize - 3)));
  const hf = {
    input_ids: { dtype: "int64" as const, shape: [batch, T], data: ids },
    attention_mask: { dtype: "int64" as const, shape: [batch, T], data: new BigInt64Array(batch * T).fill(1n) },
  };
  return { ...model.family.feeds(model.config, hf), labels };
}

/** A compiled training step (graph + AdamW in TS) for a model and adapter options. */
export async function trainingStep(
  model: LoadedModel,
  adapter: AdapterOptions | undefined,
  batch: number,
  seqLen: number | undefined,
  opts: {
    dropout?: number;
    profilePrefix?: string;
    store?: WeightStore;
    checkpointActivations?: boolean;
    lossChunk?: number | "auto";
    prepack?: boolean;
    arena?: boolean;
  } = {},
) {
  const set = adapter ? createAdapter(model, adapter).set : undefined;
  const dropout = opts.dropout ? { hidden: opts.dropout, attention: opts.dropout, seed: 1 } : undefined;
  const spec = { model, adapter: set, batch, seqLen, trainable: set ? ("adapter+head" as const) : ("head" as const), loss: true, grads: true, dropout };
  const built = buildModelGraph({ ...spec, checkpointActivations: opts.checkpointActivations, lossChunk: opts.lossChunk });
  // useful work: the recomputation that checkpointing adds does not count
  const flops = graphFlops(opts.checkpointActivations || opts.lossChunk !== undefined ? buildModelGraph(spec).graph : built.graph);
  const store = opts.store ?? new WeightStore();
  const graph: OrtCompiledGraph = await compile(built.graph, {
    store,
    threads: threads(),
    profilePrefix: opts.profilePrefix,
    prepack: opts.prepack,
    arena: opts.arena,
  });
  const { flat, layout } = flattenParams(new Map(built.trainable.map((k) => [k, built.weights.get(k)!.data])));
  const views = segmentViews(flat, layout);
  const grads = new Float32Array(layout.size);
  const gradViews = segmentViews(grads, layout);
  const opt = adamw({ weightDecay: 0.01 });
  const state = opt.init(layout);
  const data = batchFeeds(model, batch, seqLen);
  const feeds: Record<string, HostTensor> = { ...data };
  for (const k of built.trainable) feeds[k] = f32(built.weights.get(k)!.shape, views.get(k)!);
  // gradients land straight in the optimiser's flat buffer
  const into: Record<string, HostTensor> = {};
  for (const k of built.trainable) into[`grad.${k}`] = f32(built.weights.get(k)!.shape, gradViews.get(k)!);
  into.loss = f32([], new Float32Array(1));
  if (built.graph.outputs.has("logits")) {
    into.logits = f32(model.family.task === "causal-lm" ? [batch, seqLen!, model.config.vocabSize] : [batch, model.config.numLabels]);
  }
  let loss = NaN;
  const step = async () => {
    const out = await graph.run(feeds, into);
    loss = out.loss.data[0] as number;
    opt.update(state, flat, grads, 1e-4);
  };
  return {
    step,
    flops,
    trainableParams: layout.size,
    nodes: built.graph.nodes.length,
    loss: () => loss,
    dispose: () => {
      graph.dispose();
      if (!opts.store) store.dispose();
    },
    endProfiling: () => graph.endProfiling(),
  };
}

interface StepBench {
  name: string;
  raw: Record<string, unknown>;
  batch: number;
  seqLen?: number;
  unit: string;
}

async function runStep(spec: StepBench, argv: string[]): Promise<void> {
  const args = parseStepArgs(argv);
  const overrides = args.layers ? { num_hidden_layers: args.layers } : {};
  const model = randomModel(spec.raw, overrides);
  const ours = await trainingStep(model, { construction: "lora", ranks: args.rank }, spec.batch, spec.seqLen, {
    dropout: args.dropout,
    profilePrefix: args.profile,
  });
  const torchArgs = {
    config: { ...spec.raw, ...overrides },
    batch: spec.batch,
    seq_len: spec.seqLen,
    rank: args.rank,
    dropout: args.dropout,
    threads: threads(),
    warmup: args.warmup,
    runs: args.runs,
  };
  // PyTorch peers stay alive; their steps are interleaved with ours one by one
  const cuda = args.torchDevice === "cuda";
  const [bestArgs, bestVariant, defArgs, defVariant] = cuda
    ? [{ ...torchArgs, device: "cuda", tf32: true }, TORCH_CUDA_TF32, { ...torchArgs, device: "cuda" }, TORCH_CUDA_DEFAULT]
    : [torchArgs, TORCH_BEST, { ...torchArgs, threads: 0 }, TORCH_DEFAULT];
  const best = args.torch ? await TorchPeer.start("step", bestArgs, bestVariant) : undefined;
  const def = args.torch ? await TorchPeer.start("step", defArgs, defVariant) : undefined;
  const oursS: number[] = [];
  const bestS: number[] = [];
  const defS: number[] = [];
  const mm: number[] = [];
  const mmProbe = await matmulProbe();
  for (let round = 0; round < args.rounds; round++) {
    // the matmul rate is timed in the same interleaved sequence: same machine load
    const fns: (() => Promise<unknown>)[] = [ours.step, mmProbe.run];
    if (best) fns.push(() => best.step());
    if (def) fns.push(() => def.step());
    const samples = await interleave(fns, { warmup: round === 0 ? args.warmup : 1, runs: args.runs, gapMs: 300 });
    mm.push(...samples[1].map(mmProbe.gflops));
    samples.splice(1, 1);
    oursS.push(...samples[0]);
    if (best) bestS.push(...samples[1]);
    if (def) defS.push(...samples.at(-1)!);
    const f = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
    console.log(
      `round ${round + 1}/${args.rounds}: ours ${f(samples[0])} s/step (loss ${ours.loss().toFixed(4)}); torch best ${best ? f(samples[1]) : "—"}; default ${def ? f(samples.at(-1)!) : "—"}`,
    );
  }
  mmProbe.dispose();
  type PeerReport = { peak_rss_mib: number; torch_threads: number; cuda_device?: string; cuda_peak_mib?: number };
  const bestInfo = best ? ((await best.close()) as PeerReport) : undefined;
  const defInfo = def ? ((await def.close()) as PeerReport) : undefined;
  if (args.profile) ours.endProfiling();
  ours.dispose();
  const ourMed = median(oursS);
  const bestMed = bestS.length ? median(bestS) : null;
  const defMed = defS.length ? median(defS) : null;
  const mmMed = median(mm);
  const gfl = ours.flops / ourMed / 1e9;
  const perS = (s: number | null) => (s ? spec.batch / s : null);
  console.log(
    `${spec.name}: batch ${spec.batch}${spec.seqLen ? `, sequence ${spec.seqLen}` : ""}, LoRA r=${args.rank} on q,k,v + head (${ours.trainableParams} trainable), ` +
      `AdamW; ${(ours.flops / 1e9).toFixed(1)} GFLOP per step; ONNX Runtime EP ${defaultProviders().join(",")}, ${threads()} threads; ` +
      `PyTorch on ${cuda ? (bestInfo?.cuda_device ?? defInfo?.cuda_device ?? "cuda") : "cpu"}; dropout ${args.dropout}; ${oursS.length} timed steps after ${args.warmup} warm-ups`,
  );
  table(
    ["runner", "s/step", `${spec.unit}/s`, "GFLOP/s", "% of matmul", "peak RSS MiB", "ours/this"],
    [
      ["ours (ONNX Runtime + TS AdamW)", ourMed, perS(ourMed), gfl, (100 * gfl) / mmMed, peakRssMiB(), 1],
      [
        bestVariant.name,
        bestMed,
        perS(bestMed),
        bestMed && ours.flops / bestMed / 1e9,
        bestMed && (100 * ours.flops) / bestMed / 1e9 / mmMed,
        bestInfo?.peak_rss_mib,
        ratio(ourMed, bestMed),
      ],
      [
        `${defVariant.name}${defInfo && !cuda ? `, ${defInfo.torch_threads} thr` : ""}`,
        defMed,
        perS(defMed),
        defMed && ours.flops / defMed / 1e9,
        defMed && (100 * ours.flops) / defMed / 1e9 / mmMed,
        defInfo?.peak_rss_mib,
        ratio(ourMed, defMed),
      ],
      ["ours fp32 matmul (8-chain)", null, null, mmMed, 100, null, null],
    ],
  );
  if (args.profile) {
    const path = latestProfile(args.profile);
    if (path) printProfile(summariseProfile(path, args.warmup), 20);
  }
  emitJson(spec.name, {
    ours_s: ourMed,
    torch_s: bestMed,
    time_ratio: ratio(ourMed, bestMed),
    torch_default_s: defMed,
    time_ratio_default: ratio(ourMed, defMed),
    [`${spec.unit}_per_s`]: perS(ourMed),
    [`torch_${spec.unit}_per_s`]: perS(bestMed),
    gflops: gfl,
    matmul_gflops: mmMed,
    matmul_fraction: gfl / mmMed,
    flop_per_step: ours.flops,
    peak_rss_mib: peakRssMiB(),
    torch_peak_rss_mib: bestInfo?.peak_rss_mib ?? null,
    torch_default_peak_rss_mib: defInfo?.peak_rss_mib ?? null,
    trainable_params: ours.trainableParams,
    dropout: args.dropout,
    ep: defaultProviders().join(","),
    torch_device: cuda ? (bestInfo?.cuda_device ?? defInfo?.cuda_device ?? "cuda") : "cpu",
    torch_cuda_peak_mib: bestInfo?.cuda_peak_mib ?? null,
  });
}

export const runVit = (argv: string[]) => runStep({ name: "step-vit", raw: VIT_B16, batch: 8, unit: "images" }, argv);
export const runRoberta = (argv: string[]) => runStep({ name: "step-roberta", raw: ROBERTA_BASE, batch: 16, seqLen: 128, unit: "sequences" }, argv);
