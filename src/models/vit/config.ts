/** ViT configuration as HuggingFace's ViTConfig stores it; every field comes from config.json. */
import { ConfigError } from "../../errors.ts";
import { ConfigReader, EPSILON, MAX_LAYERS, PROBABILITY } from "../config-fields.ts";

export interface ViTConfig {
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  qkvBias: boolean;
  layerNormEps: number;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  numLabels: number;
  id2label?: string[];
}

export function parseViTConfig(raw: Record<string, unknown>, source: string): ViTConfig {
  const r = new ConfigReader(raw, source);
  const act = r.str("hidden_act", "gelu");
  if (act !== "gelu") throw new ConfigError(`${source}: hidden_act "${act}" is not supported (ViT here uses exact-erf "gelu")`);
  const id2label = r.labels();
  const cfg: ViTConfig = {
    hiddenSize: r.int("hidden_size"),
    numHiddenLayers: r.int("num_hidden_layers", undefined, 1, MAX_LAYERS),
    numAttentionHeads: r.int("num_attention_heads"),
    intermediateSize: r.int("intermediate_size"),
    imageSize: r.int("image_size"),
    patchSize: r.int("patch_size"),
    numChannels: r.int("num_channels", 3),
    qkvBias: r.bool("qkv_bias", true),
    layerNormEps: r.num("layer_norm_eps", 1e-12, EPSILON),
    hiddenDropoutProb: r.num("hidden_dropout_prob", 0, PROBABILITY),
    attentionProbsDropoutProb: r.num("attention_probs_dropout_prob", 0, PROBABILITY),
    numLabels: r.int("num_labels", id2label?.length ?? 2),
    id2label,
  };
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new ConfigError(`${source}: hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numAttentionHeads}`);
  }
  if (cfg.imageSize % cfg.patchSize !== 0) {
    throw new ConfigError(`${source}: image_size ${cfg.imageSize} is not a multiple of patch_size ${cfg.patchSize}`);
  }
  return cfg;
}
