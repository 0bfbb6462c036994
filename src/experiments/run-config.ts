/**
 * A run's configuration: typed defaults in one place (the paper's code), a JSON config file whose
 * keys flags override, values coerced to the default's type and unknown keys rejected.
 */
import { DEFAULT_RANK_SLACK } from "../adapters/params.ts";
import { ConfigError } from "../errors.ts";
import type { TrainConfig } from "../train/trainer.ts";

/**
 * Training fields as in TrainConfig (AdamW as the paper's code: lr 5e-4, weight decay 0.01, cosine
 * to 1e-6, batch 64, 10 epochs), except `warmup` = -1 meaning the paper's default (0 for images,
 * 0.1 for text), plus what picks the model, data and adapter.
 */
export interface RunConfig extends Omit<TrainConfig, "metric" | "threads" | "valFraction" | "coreLrScale" | "checkpointActivations" | "lossChunk"> {
  /** HF model folder; empty = the embedded MNIST benchmark. */
  model: string;
  /** Data path (or "mnist"); empty with the embedded model. */
  data: string;
  /** The embedded text-classification benchmark's data set (sentiment | spam); "" = sentiment. */
  dataset: string;
  dataFormat: string;
  evalData: string;
  textColumn: string;
  textPairColumn: string;
  labelColumn: string;
  /** Classification: the head's class count; integer labels in [0, numLabels), not all need occur. 0 = from the data. */
  numLabels: number;
  /** lora | att | qkv | depth | att_qkv | att_depth | qkv_depth | att_qkv_depth | head | full */
  construction: string;
  /** Per-mode ranks ("8,8,3,12"); else --budget or --iso-lora decides. */
  ranks: string;
  budget: number;
  isoLora: number;
  /** Rank solver: among ranks within this fraction below the budget, take the most balanced. */
  rankSlack: number;
  factorization: string;
  headLayout: string;
  targetModules: string;
  /** PEFT's layers_to_transform as "0,1,5"; "" = every block. */
  layersToTransform: string;
  /** Grouped-query attention: "mean" (K/V share Q's stack) or "separate". */
  gqa: string;
  /** A published method (lorta, lotr, fact_tk, fact_tt) instead of --construction; "" = none. */
  preset: string;
  /** Multiplies every update; LoRA: alpha / r. The paper uses 1. */
  scaling: number;
  /** Validated into TrainConfig by `trainConfig` ("" = the task's default: accuracy, perplexity); kept loose here so files and flags coerce. */
  metric: string;
  maxLength: number;
  /** Causal LM: cut examples longer than maxLength (counted); false makes them an error. */
  truncation: boolean;
  /** Causal LM: pack short examples into rows of maxLength tokens. */
  packing: boolean;
  /** "" = the model's own task (from its architecture); else it must match it. */
  task: string;
  augment: boolean;
  /** ONNX Runtime threads; 0 = all cores. */
  threads: number;
  /** Training data held out (per class, seeded) to select the best evaluation; 0 = select on test. */
  valFraction: number;
  /** Learning-rate multiplier of the zero-initialised adapter tensors (Tucker core, LoRA B). */
  coreLrScale: number;
  /** Recompute each layer's activations in the backward pass instead of keeping them. */
  checkpointActivations: boolean;
  /** Causal LM: logits and loss this many positions at a time; 0 = whole; -1 = chunked when the logits are large. */
  lossChunk: number;
  /** How the frozen linear weights are held: f32, f16, or int8 / int4 block-wise (decoders; src/models/quantize-base.ts). */
  baseDtype: string;
}

/** The settings of a run when neither the command line nor a config file gives them. */
export const DEFAULTS: RunConfig = {
  model: "",
  data: "",
  dataset: "",
  dataFormat: "",
  evalData: "",
  textColumn: "",
  textPairColumn: "",
  labelColumn: "",
  numLabels: 0,
  construction: "qkv_depth",
  ranks: "",
  budget: 0,
  isoLora: 8,
  rankSlack: DEFAULT_RANK_SLACK,
  factorization: "tucker",
  headLayout: "head_major",
  targetModules: "",
  layersToTransform: "",
  gqa: "mean",
  preset: "",
  scaling: 1,
  lr: 5e-4,
  weightDecay: 0.01,
  epochs: 10,
  batchSize: 64,
  warmup: -1,
  minLr: 1e-6,
  seed: 0,
  evalEvery: 0,
  saveEvery: 0,
  maxGradNorm: 0,
  metric: "",
  maxLength: 512,
  truncation: true,
  packing: false,
  task: "",
  dropout: 0,
  augment: false,
  threads: 0,
  valFraction: 0.1,
  coreLrScale: 1,
  checkpointActivations: false,
  lossChunk: -1,
  baseDtype: "f32",
};

/** The embedded benchmark's schedule: ~80 steps of few-shot data need a larger rate than the paper's. */
export const EMBEDDED_OVERRIDES: Partial<RunConfig> = { lr: 5e-3, epochs: 10, batchSize: 64 };

/** The embedded LM benchmark's schedule: 192 few-shot blocks of 64 bytes, 48 steps. */
export const EMBEDDED_LM_OVERRIDES: Partial<RunConfig> = { lr: 5e-3, epochs: 4, batchSize: 16, warmup: 0.1 };

/** The embedded text benchmarks' schedule: a few thousand short texts, 64 tokens at most. */
export const EMBEDDED_TEXT_OVERRIDES: Partial<RunConfig> = { lr: 3e-3, epochs: 6, batchSize: 32, warmup: 0.1, maxLength: 64 };

function coerce(key: keyof RunConfig, v: unknown, source: string): RunConfig[keyof RunConfig] {
  const want = typeof DEFAULTS[key];
  if (want === "number") {
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) throw new ConfigError(`${source}: "${key}" must be a number, got ${JSON.stringify(v)}`);
    return n;
  }
  if (want === "boolean") {
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    throw new ConfigError(`${source}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
  }
  if (Array.isArray(v)) return v.join(",");
  if (typeof v !== "string" && typeof v !== "number") throw new ConfigError(`${source}: "${key}" must be a string, got ${JSON.stringify(v)}`);
  return String(v);
}

/** Apply `values` (from a file or flags) over `base`, rejecting unknown keys. */
export function applyConfig(base: RunConfig, values: Record<string, unknown>, source: string): RunConfig {
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    if (!(k in DEFAULTS)) {
      throw new ConfigError(`${source}: unknown key "${k}"; valid keys: ${Object.keys(DEFAULTS).join(", ")}`);
    }
    out[k] = coerce(k as keyof RunConfig, v, source);
  }
  return out as unknown as RunConfig;
}

/** Parse "8" or "8,8,3,12" into positive integers (the one parser of --ranks). */
export function parseRanks(s: string): number[] {
  const parts = s.split(",").map((x) => x.trim());
  if (parts.some((p) => !/^[+-]?\d+(\.\d+)?$/.test(p))) {
    throw new ConfigError(`--ranks takes positive integers separated by commas (one integer or a comma-separated list, e.g. 8 or 8,8,3,12), got "${s}"`);
  }
  const bad = parts.find((p) => !Number.isInteger(Number(p)) || Number(p) < 1);
  if (bad !== undefined) throw new ConfigError(`--ranks: a rank must be an integer ≥ 1, got ${bad} (in "${s}")`);
  return parts.map(Number);
}
