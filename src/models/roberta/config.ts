/** RoBERTa configuration as HuggingFace's RobertaConfig stores it. */
import { ConfigError } from "../../errors.ts";
import { ConfigReader, EPSILON, MAX_LAYERS, PROBABILITY } from "../config-fields.ts";

export interface RobertaConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  padTokenId: number;
  layerNormEps: number;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  numLabels: number;
  id2label?: string[];
}

export function parseRobertaConfig(raw: Record<string, unknown>, source: string): RobertaConfig {
  const r = new ConfigReader(raw, source);
  const act = r.str("hidden_act", "gelu");
  if (act !== "gelu") throw new ConfigError(`${source}: hidden_act "${act}" is not supported (only exact-erf "gelu")`);
  const pe = r.str("position_embedding_type", "absolute");
  if (pe !== "absolute") throw new ConfigError(`${source}: position_embedding_type "${pe}" is not supported (only "absolute")`);
  const id2label = r.labels();
  const cfg: RobertaConfig = {
    vocabSize: r.int("vocab_size"),
    hiddenSize: r.int("hidden_size"),
    numHiddenLayers: r.int("num_hidden_layers", undefined, 1, MAX_LAYERS),
    numAttentionHeads: r.int("num_attention_heads"),
    intermediateSize: r.int("intermediate_size"),
    maxPositionEmbeddings: r.int("max_position_embeddings"),
    typeVocabSize: r.int("type_vocab_size", 1),
    padTokenId: r.int("pad_token_id", 1, 0),
    layerNormEps: r.num("layer_norm_eps", 1e-12, EPSILON),
    hiddenDropoutProb: r.num("hidden_dropout_prob", 0.1, PROBABILITY),
    attentionProbsDropoutProb: r.num("attention_probs_dropout_prob", 0.1, PROBABILITY),
    numLabels: r.int("num_labels", id2label?.length ?? 2),
    id2label,
  };
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new ConfigError(`${source}: hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numAttentionHeads}`);
  }
  return cfg;
}
