/** Random-weight models of the published shapes (shape decides cost) for the benchmarks. */
import type { AnyFamily, LoadedModel } from "../src/models/load.ts";
import { defaultHead } from "../src/models/load.ts";
import { type BaseDType, quantizableWeights, quantizeWeight } from "../src/models/quantize-base.ts";
import type { QuantizedMatrix } from "../src/tensor/quantize.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WEIGHTS_INDEX_FILE } from "../src/io/checkpoint.ts";
import { type TensorInput, writeSafetensors } from "../src/io/safetensors.ts";
import { MODEL_PRESETS } from "../src/pipeline/presets.ts";
import { randomWeights } from "./harness.ts";

export const VIT_B16 = {
  model_type: "vit",
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  image_size: 224,
  patch_size: 16,
  num_channels: 3,
  qkv_bias: true,
  layer_norm_eps: 1e-12,
  hidden_dropout_prob: 0,
  attention_probs_dropout_prob: 0,
  num_labels: 10,
};

export const ROBERTA_BASE = {
  model_type: "roberta",
  vocab_size: 50265,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  max_position_embeddings: 514,
  type_vocab_size: 1,
  pad_token_id: 1,
  layer_norm_eps: 1e-5,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  num_labels: 2,
};

/** HuggingFaceTB/SmolLM2-135M's shape: 30 layers, 9 query / 3 K/V heads, tied embeddings. */
export const SMOLLM2_135M = {
  model_type: "llama",
  vocab_size: 49152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  hidden_act: "silu",
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  tie_word_embeddings: true,
};

/** The config of `--shape name`: SmolLM2-135M or a decoder preset of src/pipeline/presets.ts (llama-3.2-1b, llama-3.2-3b, …). */
export function decoderShape(name: string): Record<string, unknown> {
  const raw = name === "smollm2-135m" ? SMOLLM2_135M : MODEL_PRESETS[name];
  if (!raw || raw.model_type === "vit" || raw.model_type === "roberta") throw new Error(`--shape ${name}: not a decoder preset`);
  return raw;
}

/**
 * A LoadedModel with seeded random weights; `overrides` change config fields (e.g. layers). With a
 * quantized `baseDtype` each linear weight is quantized as soon as it is drawn, so the float32
 * model (12 GiB at 3B) never exists at once.
 */
export function randomModel(raw: Record<string, unknown>, overrides: Record<string, unknown> = {}, seed = 1, baseDtype: BaseDType = "f32"): LoadedModel {
  const rawConfig = { ...raw, ...overrides };
  const family: AnyFamily = defaultHead(rawConfig.model_type)!;
  const config = family.parseConfig(rawConfig, "bench");
  const shapes = family.parameterShapes(config);
  const model: LoadedModel = { family, config, weights: new Map(), dir: "(random)", rawConfig, newHead: true };
  if (baseDtype === "f32") return { ...model, weights: randomWeights(shapes, seed) };
  const linear = new Set(quantizableWeights(model));
  const weights = randomWeights(new Map([...shapes].filter(([k]) => !linear.has(k))), seed);
  const quantized = new Map<string, QuantizedMatrix>();
  let i = 0;
  for (const name of linear) quantized.set(name, quantizeWeight(randomWeights(new Map([[name, shapes.get(name)!]]), seed + ++i).get(name)!, baseDtype));
  return { ...model, weights, quantized, baseDtype };
}

/** The float dtypes a random checkpoint is written in. */
export type FileDType = "F32" | "BF16";

/** Write `raw`'s model with random weights as one shard per layer (and one for the rest) plus the index. */
export function writeRandomCheckpoint(dir: string, raw: Record<string, unknown>, fileDtype: FileDType): void {
  mkdirSync(dir, { recursive: true });
  const family = defaultHead(raw.model_type)!;
  const shapes: Map<string, number[]> = family.parameterShapes(family.parseConfig(raw, "bench"));
  const groups = new Map<string, [string, number[]][]>();
  for (const [k, shape] of shapes) {
    const layer = /\.layers\.(\d+)\./.exec(k)?.[1];
    const shard = `model-${layer === undefined ? "rest" : layer.padStart(3, "0")}.safetensors`;
    groups.set(shard, [...(groups.get(shard) ?? []), [k, shape]]);
  }
  const weightMap: Record<string, string> = {};
  let seed = 1;
  for (const [shard, entries] of groups) {
    const tensors: Record<string, TensorInput> = {};
    for (const [k, t] of randomWeights(new Map(entries), seed++)) {
      tensors[k] = fileDtype === "F32" ? { dtype: "F32", shape: t.shape, data: t.data } : { dtype: "BF16", shape: t.shape, data: bf16Bits(t.data) };
      weightMap[k] = shard;
    }
    writeSafetensors(join(dir, shard), tensors);
  }
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
  writeFileSync(join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

/** BF16 bit patterns of float32 values: the high half of each (truncated: random weights need no rounding). */
function bf16Bits(data: Float32Array): Uint16Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < out.length; i++) out[i] = bits[i] >>> 16;
  return out;
}
