/** The config fields every BERT-style encoder (ViT, RoBERTa, BERT) shares, read and checked once for all of them. */
import { ConfigError } from "../errors.ts";
import { type ConfigReader, EPSILON, MAX_LAYERS, PROBABILITY } from "./config-fields.ts";

export interface EncoderConfig {
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  layerNormEps: number;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  numLabels: number;
  id2label?: string[];
}

/** The shared fields of `r`; `dropout` is the family's default dropout probability (HF's config class default). */
export function parseEncoderFields(r: ConfigReader, source: string, dropout: number): EncoderConfig {
  const act = r.str("hidden_act", "gelu");
  if (act !== "gelu") throw new ConfigError(`${source}: hidden_act "${act}" is not supported (only exact-erf "gelu")`);
  const id2label = r.labels();
  const cfg: EncoderConfig = {
    hiddenSize: r.int("hidden_size"),
    numHiddenLayers: r.int("num_hidden_layers", undefined, 1, MAX_LAYERS),
    numAttentionHeads: r.int("num_attention_heads"),
    intermediateSize: r.int("intermediate_size"),
    layerNormEps: r.num("layer_norm_eps", 1e-12, EPSILON),
    hiddenDropoutProb: r.num("hidden_dropout_prob", dropout, PROBABILITY),
    attentionProbsDropoutProb: r.num("attention_probs_dropout_prob", dropout, PROBABILITY),
    numLabels: r.int("num_labels", id2label?.length ?? 2),
    id2label,
  };
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new ConfigError(`${source}: hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numAttentionHeads}`);
  }
  return cfg;
}
