/**
 * Named model shapes without weights, for parameter counts and rank budgets: each preset is the
 * config.json of the HuggingFace checkpoint it names (the fields the families read), so it goes
 * through the same `parseConfig` as a downloaded model.
 *
 * @example
 * modelShapeFor("vit-base");              // { dIn: 768, dOut: 768, heads: 12, layers: 12, projections: [query, key, value] }
 * modelShapeFor("./my-model/config.json"); // any HF config with hidden_size, num_attention_heads, num_hidden_layers
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ModelShape, modelShape } from "../adapters/constructions.ts";
import type { LinearSite } from "../nn/sites.ts";
import { ConfigError, FormatError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { ConfigReader, MAX_LAYERS } from "../models/config-fields.ts";
import { defaultHead } from "../models/load.ts";

const vitConfig = (hidden: number, layers: number, heads: number, intermediate: number, patch: number) => ({
  model_type: "vit",
  hidden_size: hidden,
  num_hidden_layers: layers,
  num_attention_heads: heads,
  intermediate_size: intermediate,
  image_size: 224,
  patch_size: patch,
  num_channels: 3,
  qkv_bias: true,
  hidden_act: "gelu",
  layer_norm_eps: 1e-12,
  num_labels: 1000,
});

const robertaConfig = (hidden: number, layers: number, heads: number, intermediate: number) => ({
  model_type: "roberta",
  vocab_size: 50265,
  hidden_size: hidden,
  num_hidden_layers: layers,
  num_attention_heads: heads,
  intermediate_size: intermediate,
  max_position_embeddings: 514,
  type_vocab_size: 1,
  pad_token_id: 1,
  bos_token_id: 0,
  eos_token_id: 2,
  hidden_act: "gelu",
  layer_norm_eps: 1e-5,
  num_labels: 2,
});

/** HuggingFace's causal-LM class of each decoder model type a preset uses. */
const CAUSAL_LM_CLASS = { llama: "LlamaForCausalLM", qwen2: "Qwen2ForCausalLM" } as const;

const decoderConfig = (
  modelType: keyof typeof CAUSAL_LM_CLASS,
  vocab: number,
  hidden: number,
  layers: number,
  heads: number,
  kvHeads: number,
  intermediate: number,
  extra: Record<string, unknown>,
) => ({
  model_type: modelType,
  architectures: [CAUSAL_LM_CLASS[modelType]],
  vocab_size: vocab,
  hidden_size: hidden,
  num_hidden_layers: layers,
  num_attention_heads: heads,
  num_key_value_heads: kvHeads,
  intermediate_size: intermediate,
  hidden_act: "silu",
  ...extra,
});

/** Llama 3.2 (1B, 3B): 8 K/V heads, MLP 8192, llama3 rotary scaling, tied embeddings. */
const llama32 = (hidden: number, layers: number, heads: number, headDim: number) =>
  decoderConfig("llama", 128256, hidden, layers, heads, 8, 8192, {
    head_dim: headDim,
    max_position_embeddings: 131072,
    rope_theta: 500000,
    rope_scaling: { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  });

/**
 * config.json contents of well-known checkpoints (google/vit-*-patch16-224, FacebookAI/roberta-*,
 * HuggingFaceTB/SmolLM2-135M, Qwen/Qwen2.5-0.5B, TinyLlama/TinyLlama-1.1B-Chat-v1.0,
 * meta-llama/Llama-3.2-1B, meta-llama/Llama-3.2-3B).
 */
export const MODEL_PRESETS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  "vit-base": vitConfig(768, 12, 12, 3072, 16),
  "vit-large": vitConfig(1024, 24, 16, 4096, 16),
  "vit-huge": vitConfig(1280, 32, 16, 5120, 14),
  "roberta-base": robertaConfig(768, 12, 12, 3072),
  "roberta-large": robertaConfig(1024, 24, 16, 4096),
  "smollm2-135m": decoderConfig("llama", 49152, 576, 30, 9, 3, 1536, {
    max_position_embeddings: 8192,
    rope_theta: 100000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  }),
  "qwen2.5-0.5b": decoderConfig("qwen2", 151936, 896, 24, 14, 2, 4864, {
    max_position_embeddings: 32768,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    use_sliding_window: false,
    sliding_window: 32768,
  }),
  "tinyllama-1.1b": decoderConfig("llama", 32000, 2048, 22, 32, 4, 5632, {
    max_position_embeddings: 2048,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
  }),
  "llama-3.2-1b": llama32(2048, 16, 32, 64),
  "llama-3.2-3b": llama32(3072, 28, 24, 128),
};

/** The raw config.json of a preset name, or of a path to a config.json (or to the folder holding one). */
export function modelConfigFor(nameOrPath: string): { raw: Record<string, unknown>; source: string } {
  const preset = MODEL_PRESETS[nameOrPath];
  if (preset) return { raw: { ...preset }, source: `preset "${nameOrPath}"` };
  if (!existsSync(nameOrPath)) {
    throw new ConfigError(
      `model "${nameOrPath}" is neither a preset nor an existing file; use one of ${Object.keys(MODEL_PRESETS).join(", ")}, ` +
        `or a path to a HuggingFace config.json (or its folder)`,
    );
  }
  const path = statSync(nameOrPath).isDirectory() ? join(nameOrPath, "config.json") : nameOrPath;
  const raw = readJsonFile(path, "model config");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new FormatError(`${path}: must hold a JSON object`);
  return { raw: raw as Record<string, unknown>, source: path };
}

/**
 * The adapter's view of a model (d_in = d_out = hidden size, heads, layers, the adapted
 * projections of each block) from a preset name or a HuggingFace config.json. Configs of the
 * supported families are parsed (and validated) by that family; any other config needs
 * `hidden_size`, `num_attention_heads` and `num_hidden_layers`, and is assumed to have
 * square [hidden, hidden] query/key/value projections.
 */
export function modelShapeFor(nameOrPath: string, projections?: readonly string[]): ModelShape {
  const { raw, source } = modelConfigFor(nameOrPath);
  const family = defaultHead(raw.model_type);
  let hidden: number;
  let heads: number;
  let layers: number;
  if (family) {
    ({ hidden, heads, layers } = family.shape(family.parseConfig(raw, source)));
  } else {
    const r = new ConfigReader(raw, source);
    hidden = r.int("hidden_size");
    heads = r.int("num_attention_heads");
    layers = r.int("num_hidden_layers", undefined, 1, MAX_LAYERS);
  }
  return modelShape({ dIn: hidden, dOut: hidden, heads, layers, projections });
}

/** The linear layers an adapter targets by default on a preset or config.json's family (q, k, v by its names). */
export function modelDefaultTargets(nameOrPath: string): string[] {
  const { raw } = modelConfigFor(nameOrPath);
  const family = defaultHead(raw.model_type);
  return [...(family?.adapterTargets ?? ["query", "key", "value"])];
}

/**
 * The linear sites of a preset or config.json: the family's own list, or for a config of another
 * family square [hidden, hidden] query/key/value projections with their heads.
 */
export function modelSitesFor(nameOrPath: string): LinearSite[] {
  const { raw, source } = modelConfigFor(nameOrPath);
  const family = defaultHead(raw.model_type);
  if (family) return family.linearSites(family.parseConfig(raw, source));
  const { dIn: d, heads, layers } = modelShapeFor(nameOrPath);
  return Array.from({ length: layers }, (_, l) =>
    ["query", "key", "value"].map(
      (name): LinearSite => ({
        path: `layer.${l}.${name}`,
        name,
        layer: l,
        inFeatures: d,
        outFeatures: d,
        heads: { side: "out", count: heads, dim: d / heads },
      }),
    ),
  ).flat();
}
