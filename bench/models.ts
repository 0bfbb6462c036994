/** Random-weight models of the published shapes (shape decides cost) for the benchmarks. */
import type { AnyFamily, LoadedModel } from "../src/models/load.ts";
import { defaultHead } from "../src/models/load.ts";
import { type BaseDType, quantizableWeights, quantizeWeight } from "../src/models/quantize-base.ts";
import type { QuantizedMatrix } from "../src/tensor/quantize.ts";
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
