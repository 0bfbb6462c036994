/**
 * Decoder configuration as HuggingFace's LlamaConfig, MistralConfig and Qwen2Config store it. A
 * field that changes the computation in a way this code does not implement is an error naming
 * the field, never a silent difference.
 */
import { ConfigError } from "../../errors.ts";
import { ConfigReader, type Json, MAX_LAYERS } from "../config-fields.ts";

export const ROPE_TYPES = ["default", "linear", "dynamic", "llama3"] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

export interface RopeScaling {
  type: RopeType;
  factor: number;
  /** llama3 only. */
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface DecoderConfig {
  modelType: "llama" | "mistral" | "qwen2";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  /** Bias on q, k, v (Llama's attention_bias; always on in Qwen2). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama's attention_bias; never in Qwen2). */
  oBias: boolean;
  mlpBias: boolean;
  attentionDropout: number;
  /** Attention restricted to the last `slidingWindow` tokens; sequences longer than it are refused. */
  slidingWindow?: number;
  /** Classes of the sequence-classification head (HF's num_labels, else id2label's size, else 2). */
  numLabels: number;
  padTokenId?: number;
  eosTokenId?: number;
  bosTokenId?: number;
}

function parseRopeScaling(raw: unknown, r: ConfigReader, maxPos: number): RopeScaling {
  const none: RopeScaling = { type: "default", factor: 1, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: maxPos };
  if (raw === null || raw === undefined) return none;
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigError(`${r.source}: field "rope_scaling" must be null or an object, found ${JSON.stringify(raw)}`);
  const s = new ConfigReader(raw as Json, `${r.source} rope_scaling`);
  const type = (s.raw.rope_type ?? s.raw.type) as string;
  if (!(ROPE_TYPES as readonly string[]).includes(type)) {
    throw new ConfigError(
      `${r.source}: field "rope_scaling" has type ${JSON.stringify(type)}, which is not implemented; supported: ${ROPE_TYPES.join(", ")}. ` +
        `Use a checkpoint whose rope_scaling is one of these (or null)`,
    );
  }
  if (type === "default") return none;
  return {
    type: type as RopeType,
    factor: s.num("factor"),
    lowFreqFactor: type === "llama3" ? s.num("low_freq_factor") : 1,
    highFreqFactor: type === "llama3" ? s.num("high_freq_factor") : 4,
    originalMaxPositionEmbeddings: type === "llama3" ? s.int("original_max_position_embeddings") : maxPos,
  };
}

const optionalId = (v: unknown): number | undefined => (typeof v === "number" ? v : Array.isArray(v) && typeof v[0] === "number" ? v[0] : undefined);

export function parseDecoderConfig(raw: Record<string, unknown>, source: string): DecoderConfig {
  const r = new ConfigReader(raw, source);
  const modelType = r.oneOf("model_type", ["llama", "mistral", "qwen2"] as const);
  const act = r.str("hidden_act", "silu");
  if (act !== "silu")
    throw new ConfigError(`${source}: field "hidden_act" is "${act}", which is not implemented (only "silu"); use a checkpoint with hidden_act "silu"`);
  const hidden = r.int("hidden_size");
  const heads = r.int("num_attention_heads");
  const kvHeads = r.int("num_key_value_heads", heads);
  const headDim = raw.head_dim === null || raw.head_dim === undefined ? hidden / heads : r.int("head_dim");
  if (!Number.isInteger(headDim))
    throw new ConfigError(`${source}: hidden_size ${hidden} is not divisible by num_attention_heads ${heads} and there is no "head_dim"`);
  if (headDim % 2 !== 0) throw new ConfigError(`${source}: head_dim ${headDim} must be even for rotary embeddings`);
  if (heads % kvHeads !== 0) throw new ConfigError(`${source}: num_attention_heads ${heads} must be a multiple of num_key_value_heads ${kvHeads}`);
  const maxPos = r.int("max_position_embeddings", 2048);
  // transformers 5 writes rope_theta and the scaling together as rope_parameters
  const rope =
    typeof raw.rope_parameters === "object" && raw.rope_parameters !== null && !Array.isArray(raw.rope_parameters) ? (raw.rope_parameters as Json) : undefined;
  const qwen = modelType === "qwen2";
  const attnBias = qwen ? false : r.bool("attention_bias", false);
  // Qwen2 applies its window only when use_sliding_window is set; Mistral whenever sliding_window is a number
  const window = (qwen ? raw.use_sliding_window === true : true) && typeof raw.sliding_window === "number" ? r.int("sliding_window") : undefined;
  return {
    modelType,
    vocabSize: r.int("vocab_size"),
    hiddenSize: hidden,
    intermediateSize: r.int("intermediate_size"),
    numHiddenLayers: r.int("num_hidden_layers", undefined, 1, MAX_LAYERS),
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim,
    maxPositionEmbeddings: maxPos,
    rmsNormEps: r.num("rms_norm_eps", 1e-6),
    ropeTheta: rope ? new ConfigReader(rope, `${source} rope_parameters`).num("rope_theta", 10000) : r.num("rope_theta", 10000),
    ropeScaling: parseRopeScaling(rope ?? raw.rope_scaling, r, maxPos),
    tieWordEmbeddings: r.bool("tie_word_embeddings", false),
    qkvBias: qwen || attnBias,
    oBias: attnBias,
    mlpBias: qwen ? false : r.bool("mlp_bias", false),
    attentionDropout: r.num("attention_dropout", 0),
    slidingWindow: window,
    numLabels: r.int("num_labels", r.labels()?.length ?? 2),
    padTokenId: optionalId(raw.pad_token_id),
    eosTokenId: optionalId(raw.eos_token_id),
    bosTokenId: optionalId(raw.bos_token_id),
  };
}

/** Refuse a sequence length the config's sliding window would change. */
export function checkSequenceLength(cfg: DecoderConfig, seqLen: number, source = "config.json"): void {
  if (cfg.slidingWindow !== undefined && cfg.slidingWindow < seqLen) {
    throw new ConfigError(
      `${source}: field "sliding_window" (${cfg.slidingWindow}) is shorter than the sequence (${seqLen} tokens) and sliding-window attention is not implemented; ` +
        `use --max-length ${cfg.slidingWindow} or less`,
    );
  }
}
