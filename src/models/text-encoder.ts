/**
 * The post-norm text encoder BERT and RoBERTa share: word + position + token-type embeddings
 * and LayerNorm, then layers of self-attention and an exact-erf GELU MLP, each added to its
 * input and normalised after. The families differ in their prefix, how positions are counted,
 * the config's defaults and their heads (text-heads.ts); this module holds what is the same.
 */
import * as b from "../ir/builder.ts";
import { checkpoint } from "../ir/checkpoint.ts";
import { additiveMask, attention, dropout, geluMlp, layerNorm } from "../ir/functional.ts";
import type { Dim } from "../ir/dtype-shape.ts";
import type { Value } from "../ir/graph.ts";
import type { ParamScope } from "../nn/params.ts";
import type { HostTensor } from "../tensor/host.ts";
import { ConfigError } from "../errors.ts";
import { ConfigReader } from "./config-fields.ts";
import { type EncoderConfig, parseEncoderFields } from "./encoder-config.ts";
import { adaptedLinears, encoderLinearSites } from "./encoder-sites.ts";
import type { WeightRule } from "../io/weight-map.ts";
import type { DerivedInput, ForwardOptions, LinearSite, ModelFamily, ModelOutputs, Task } from "./types.ts";
import { DROPOUT_KEYS } from "./dropout-keys.ts";

/** BertConfig / RobertaConfig as HuggingFace stores them: the encoder fields, vocabulary, positions and token types. */
export interface TextEncoderConfig extends EncoderConfig {
  vocabSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  padTokenId: number;
}

/** The family's defaults where config.json is silent (BERT: pad 0, two token types; RoBERTa: pad 1, one). */
export interface EncoderDefaults {
  padTokenId: number;
  typeVocabSize: number;
}

export function parseTextEncoderConfig(raw: Record<string, unknown>, source: string, defaults: EncoderDefaults): TextEncoderConfig {
  const r = new ConfigReader(raw, source);
  const pe = r.str("position_embedding_type", "absolute");
  if (pe !== "absolute") throw new ConfigError(`${source}: position_embedding_type "${pe}" is not supported (only "absolute")`);
  return {
    ...parseEncoderFields(r, source, 0.1),
    vocabSize: r.int("vocab_size"),
    maxPositionEmbeddings: r.int("max_position_embeddings"),
    typeVocabSize: r.int("type_vocab_size", defaults.typeVocabSize),
    padTokenId: r.int("pad_token_id", defaults.padTokenId, 0),
  };
}

/** The graph inputs of a text encoder; `positionIds` only where positions are fed (RoBERTa). */
export interface EncoderInputs {
  inputIds: Value; // [B, T] int64
  attentionMask: Value; // [B, T] int64
  tokenTypeIds: Value; // [B, T] int64
  positionIds?: Value; // [B, T] int64
}

/** Dropout of a head, keyed after the encoder's keys (dropoutKeys). */
export type HeadDropout = (x: Value, key: number) => Value;

/** A task's head on the encoder's last hidden state [B, T, d]: its parameters and its logits. */
export interface EncoderHead {
  readonly task: Task;
  /** The head's own parameters (trained with any adapter; freshly initialised when labels differ). */
  shapes(cfg: TextEncoderConfig): [string, number[]][];
  /** Backbone parameters the head reads that a checkpoint may lack (BERT's pooler): initialised as HF does when missing. */
  optional?(cfg: TextEncoderConfig): [string, number[]][];
  logits(s: ParamScope, cfg: TextEncoderConfig, hidden: Value, drop: HeadDropout): Value;
}

/**
 * How a family counts positions: RoBERTa feeds them (counted from pad + 1, pads keeping the pad
 * id, computed from input_ids by `feed`); BERT's are 0..T−1 in the graph.
 */
export interface PositionScheme {
  /** Tokens the position table takes (RoBERTa: less its offset). */
  limit(cfg: TextEncoderConfig): number;
  /** Host-side position ids, for schemes that feed them. */
  feed?(cfg: TextEncoderConfig, inputIds: BigInt64Array, batch: number, seq: number): BigInt64Array;
  /** How an exported graph computes the fed position ids from input_ids (schemes that feed them). */
  exportRule?(cfg: TextEncoderConfig): DerivedInput;
}

/** What a family's encoder body is: its model type, parameter prefix, positions and config defaults. */
export interface EncoderBody {
  modelType: string;
  /** Parameter prefix of the body: "roberta." or "bert.". */
  prefix: string;
  positions: PositionScheme;
  parseConfig(raw: Record<string, unknown>, source: string): TextEncoderConfig;
}

/** A text-encoder family for one task: `body` with `head`, HuggingFace's class `architecture` ("BertForTokenClassification"). */
export function encoderFamily(body: EncoderBody, architecture: string, head: EncoderHead): ModelFamily<TextEncoderConfig, EncoderInputs> {
  const spec = { ...body, architecture, head };
  const P = spec.prefix;
  const layerPath = (i: number) => `${P}encoder.layer.${i}`;
  const linearSites = (cfg: TextEncoderConfig): LinearSite[] =>
    encoderLinearSites({
      layers: `${P}encoder.layer`,
      selfAttention: "self",
      numLayers: cfg.numHiddenLayers,
      hidden: cfg.hiddenSize,
      heads: cfg.numAttentionHeads,
      intermediate: cfg.intermediateSize,
    });

  const parameterShapes = (cfg: TextEncoderConfig): Map<string, number[]> => {
    const d = cfg.hiddenSize;
    const e = `${P}embeddings`;
    const m = new Map<string, number[]>([
      [`${e}.word_embeddings.weight`, [cfg.vocabSize, d]],
      [`${e}.position_embeddings.weight`, [cfg.maxPositionEmbeddings, d]],
      [`${e}.token_type_embeddings.weight`, [cfg.typeVocabSize, d]],
      [`${e}.LayerNorm.weight`, [d]],
      [`${e}.LayerNorm.bias`, [d]],
    ]);
    for (const s of linearSites(cfg)) {
      m.set(`${s.path}.weight`, [s.outFeatures, s.inFeatures]);
      m.set(`${s.path}.bias`, [s.outFeatures]);
    }
    for (let l = 0; l < cfg.numHiddenLayers; l++) {
      for (const ln of ["attention.output.LayerNorm", "output.LayerNorm"]) {
        m.set(`${layerPath(l)}.${ln}.weight`, [d]);
        m.set(`${layerPath(l)}.${ln}.bias`, [d]);
      }
    }
    for (const [k, v] of [...(spec.head.optional?.(cfg) ?? []), ...spec.head.shapes(cfg)]) m.set(k, v);
    return m;
  };

  const forward = (s: ParamScope, cfg: TextEncoderConfig, inp: EncoderInputs, opts: ForwardOptions): ModelOutputs => {
    const sites = linearSites(cfg);
    const hp = opts.dropout?.hidden ?? 0;
    const ap = opts.dropout?.attention ?? 0;
    const drop = (x: Value, k: number) => (opts.dropout && hp > 0 ? dropout(x, hp, opts.dropout.seed + k, opts.dropout.source) : x);
    // sites reading the same input go in one call, so the adapter reads that input once
    const dense = (x: Value, group: LinearSite[]) => adaptedLinears(s, x, group, opts.hook);
    const ln = (path: string, x: Value) => layerNorm(x, s.get(`${path}.weight`), s.get(`${path}.bias`), cfg.layerNormEps);

    const e = `${P}embeddings`;
    // without fed position ids, positions are 0..T−1: a [T, d] slice of the table added to every row
    const positions = inp.positionIds ?? b.arange(inp.inputIds, 1);
    let h = b.add(
      b.add(b.gather(s.get(`${e}.word_embeddings.weight`), inp.inputIds), b.gather(s.get(`${e}.token_type_embeddings.weight`), inp.tokenTypeIds)),
      b.gather(s.get(`${e}.position_embeddings.weight`), positions),
    ); // [B, T, d]
    h = drop(ln(`${e}.LayerNorm`, h), DROPOUT_KEYS.embeddings);
    const mask = additiveMask(b.cast(inp.attentionMask, "float32")); // [B, 1, 1, T]

    for (let l = 0; l < cfg.numHiddenLayers; l++) {
      const lp = layerPath(l);
      const [q, k, v, o, fc1, fc2] = sites.slice(6 * l, 6 * l + 6);
      const layerIn = h;
      const [qy, ky, vy] = dense(h, [q, k, v]);
      const ctx = attention(qy, ky, vy, {
        heads: cfg.numAttentionHeads,
        mask,
        dropout: opts.dropout && ap > 0 ? { p: ap, seed: opts.dropout.seed + DROPOUT_KEYS.attention(l), source: opts.dropout.source } : undefined,
      });
      const a = ln(`${lp}.attention.output.LayerNorm`, b.add(drop(dense(ctx, [o])[0], DROPOUT_KEYS.attentionOutput(l)), h));
      const mlp = geluMlp(
        a,
        s.get(`${fc1.path}.weight`),
        s.get(`${fc1.path}.bias`),
        s.get(`${fc2.path}.weight`),
        s.get(`${fc2.path}.bias`),
        (v, k) => opts.hook?.(v, [k === 1 ? fc1 : fc2])[0],
      );
      h = ln(`${lp}.output.LayerNorm`, b.add(drop(mlp, DROPOUT_KEYS.mlpOutput(l)), a));
      if (opts.checkpointLayers) checkpoint([layerIn], [h]);
    }
    return { logits: spec.head.logits(s, cfg, h, (x, k) => drop(x, DROPOUT_KEYS.head(k))), lastHiddenState: h };
  };

  const optional = (cfg: TextEncoderConfig) => spec.head.optional?.(cfg).map(([k]) => k) ?? [];
  const checkpointRules = (cfg: TextEncoderConfig): WeightRule[] => [
    // pretraining heads (masked LM, next sentence), buffers, and a pooler no head of this task reads
    { ignore: /(lm_head|cls)\..+/ },
    { ignore: new RegExp(`(${escapeRegExp(P)})?embeddings\\.(position_ids|token_type_ids)`) },
    ...(optional(cfg).some((k) => k.startsWith(`${P}pooler.`)) ? [] : [{ ignore: new RegExp(`(${escapeRegExp(P)})?pooler\\..+`) }]),
    // a bare BertModel / RobertaModel checkpoint has no prefix
    { pattern: /(embeddings|encoder|pooler)\.(.+)/, to: `${P}$1.$2` },
    { pattern: /(.+)\.LayerNorm\.gamma/, to: "$1.LayerNorm.weight" },
    { pattern: /(.+)\.LayerNorm\.beta/, to: "$1.LayerNorm.bias" },
  ];

  const fed = spec.positions.feed !== undefined;
  return {
    modelType: spec.modelType,
    architecture: spec.architecture,
    task: spec.head.task,
    parseConfig: spec.parseConfig,
    shape: (cfg) => ({ hidden: cfg.hiddenSize, heads: cfg.numAttentionHeads, layers: cfg.numHiddenLayers }),
    parameterShapes,
    headParameters: (cfg) => spec.head.shapes(cfg).map(([k]) => k),
    optionalParameters: optional,
    checkpointRules,
    maxSequenceLength: spec.positions.limit,
    exportDerivedInputs: (cfg) => [
      ...(spec.positions.exportRule ? [spec.positions.exportRule(cfg)] : []),
      ...(cfg.typeVocabSize <= 1 ? [{ name: "token_type_ids", rule: "zeros" } as const] : []),
    ],
    linearSites,
    inputs: (s, _cfg, batch: Dim, seqLen?: Dim) => {
      const T = seqLen ?? 128;
      const g = s.graph;
      return {
        inputIds: g.input("input_ids", "int64", [batch, T]),
        attentionMask: g.input("attention_mask", "int64", [batch, T]),
        tokenTypeIds: g.input("token_type_ids", "int64", [batch, T]),
        positionIds: fed ? g.input("position_ids", "int64", [batch, T]) : undefined,
      };
    },
    forward,
    feeds: (cfg, hf) => {
      const ids = hf.input_ids;
      const [B, T] = ids.shape;
      const filled = (v: bigint): HostTensor => ({ dtype: "int64", shape: [B, T], data: new BigInt64Array(B * T).fill(v) });
      const feeds: Record<string, HostTensor> = {
        input_ids: ids,
        attention_mask: hf.attention_mask ?? filled(1n),
        // a checkpoint with one token type ignores the 1s tokenizers hand out for pair segments
        token_type_ids: cfg.typeVocabSize > 1 && hf.token_type_ids ? hf.token_type_ids : filled(0n),
      };
      if (spec.positions.feed) feeds.position_ids = { dtype: "int64", shape: [B, T], data: spec.positions.feed(cfg, ids.data as BigInt64Array, B, T) };
      return feeds;
    },
    inputNames: { required: ["input_ids"], optional: ["attention_mask", "token_type_ids"] },
  };
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
