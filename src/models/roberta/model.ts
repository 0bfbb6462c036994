/**
 * RobertaForSequenceClassification as HuggingFace defines it: word + position + token-type
 * embeddings, post-norm encoder layers, additive attention mask, dense → tanh → out_proj head
 * on the <s> token. Position ids follow RoBERTa: pads keep the pad id, others count from pad+1.
 */
import * as b from "../../ir/builder.ts";
import { checkpoint } from "../../ir/checkpoint.ts";
import { additiveMask, attention, dropout, geluMlp, layerNorm, linear } from "../../ir/functional.ts";
import type { Value } from "../../ir/graph.ts";
import type { ParamScope } from "../../nn/params.ts";
import { DROPOUT_KEYS } from "../dropout-keys.ts";
import { adaptedLinears, encoderLinearSites } from "../encoder-sites.ts";
import type { ForwardOptions, LinearSite, ModelFamily, ModelOutputs } from "../types.ts";
import { type RobertaConfig, parseRobertaConfig } from "./config.ts";

export interface RobertaInputs {
  inputIds: Value; // [B, T] int64
  attentionMask: Value; // [B, T] int64
  tokenTypeIds: Value; // [B, T] int64
  positionIds: Value; // [B, T] int64
}

const P = "roberta.";
const layerPath = (i: number) => `${P}encoder.layer.${i}`;

/** RoBERTa's position ids: cumulative count of non-pad tokens, offset by the pad id; pads keep it. */
export function robertaPositionIds(inputIds: ArrayLike<bigint | number>, batch: number, seq: number, padId: number): BigInt64Array {
  const out = new BigInt64Array(batch * seq);
  for (let r = 0; r < batch; r++) {
    let count = 0;
    for (let t = 0; t < seq; t++) {
      const id = Number(inputIds[r * seq + t]);
      if (id !== padId) count++;
      out[r * seq + t] = BigInt(id !== padId ? count + padId : padId);
    }
  }
  return out;
}

function linearSites(cfg: RobertaConfig): LinearSite[] {
  return encoderLinearSites({
    layers: `${P}encoder.layer`,
    selfAttention: "self",
    numLayers: cfg.numHiddenLayers,
    hidden: cfg.hiddenSize,
    heads: cfg.numAttentionHeads,
    intermediate: cfg.intermediateSize,
  });
}

function parameterShapes(cfg: RobertaConfig): Map<string, number[]> {
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
  for (const [k, v] of headShapes(cfg)) m.set(k, v);
  return m;
}

function headShapes(cfg: RobertaConfig): [string, number[]][] {
  const d = cfg.hiddenSize;
  return [
    ["classifier.dense.weight", [d, d]],
    ["classifier.dense.bias", [d]],
    ["classifier.out_proj.weight", [cfg.numLabels, d]],
    ["classifier.out_proj.bias", [cfg.numLabels]],
  ];
}

function forward(s: ParamScope, cfg: RobertaConfig, inp: RobertaInputs, opts: ForwardOptions): ModelOutputs {
  const B = inp.inputIds.shape[0];
  const d = cfg.hiddenSize;
  const sites = linearSites(cfg);
  const hp = opts.dropout?.hidden ?? 0;
  const ap = opts.dropout?.attention ?? 0;
  const drop = (x: Value, k: number) => (opts.dropout && hp > 0 ? dropout(x, hp, opts.dropout.seed + k, opts.dropout.source) : x);
  // sites reading the same input go in one call, so the adapter reads that input once
  const dense = (x: Value, group: LinearSite[]) => adaptedLinears(s, x, group, opts.hook);
  const ln = (path: string, x: Value) => layerNorm(x, s.get(`${path}.weight`), s.get(`${path}.bias`), cfg.layerNormEps);

  const e = `${P}embeddings`;
  let h = b.add(
    b.add(b.gather(s.get(`${e}.word_embeddings.weight`), inp.inputIds), b.gather(s.get(`${e}.token_type_embeddings.weight`), inp.tokenTypeIds)),
    b.gather(s.get(`${e}.position_embeddings.weight`), inp.positionIds),
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
  const cls = drop(b.reshape(b.slice(h, 1, 0, 1), [B, d]), DROPOUT_KEYS.head(0));
  const pooled = drop(b.tanh(linear(cls, s.get("classifier.dense.weight"), s.get("classifier.dense.bias"))), DROPOUT_KEYS.head(1));
  const logits = linear(pooled, s.get("classifier.out_proj.weight"), s.get("classifier.out_proj.bias"));
  return { logits, lastHiddenState: h };
}

export const roberta: ModelFamily<RobertaConfig, RobertaInputs> = {
  modelType: "roberta",
  task: "text-classification",
  parseConfig: parseRobertaConfig,
  shape: (cfg) => ({ hidden: cfg.hiddenSize, heads: cfg.numAttentionHeads, layers: cfg.numHiddenLayers }),
  parameterShapes,
  headParameters: (cfg) => headShapes(cfg).map(([k]) => k),
  linearSites,
  inputs: (s, _cfg, batch, seqLen) => {
    const T = seqLen ?? 128;
    const g = s.graph;
    return {
      inputIds: g.input("input_ids", "int64", [batch, T]),
      attentionMask: g.input("attention_mask", "int64", [batch, T]),
      tokenTypeIds: g.input("token_type_ids", "int64", [batch, T]),
      positionIds: g.input("position_ids", "int64", [batch, T]),
    };
  },
  forward,
  feeds: (cfg, hf) => {
    const ids = hf.input_ids;
    const [B, T] = ids.shape;
    const ones = () => ({ dtype: "int64" as const, shape: [B, T], data: new BigInt64Array(B * T).fill(1n) });
    const zeros = () => ({ dtype: "int64" as const, shape: [B, T], data: new BigInt64Array(B * T) });
    return {
      input_ids: ids,
      attention_mask: hf.attention_mask ?? ones(),
      // RoBERTa checkpoints have one token type; tokenizers may still hand out 1s for pair segments
      token_type_ids: cfg.typeVocabSize > 1 && hf.token_type_ids ? hf.token_type_ids : zeros(),
      position_ids: { dtype: "int64", shape: [B, T], data: robertaPositionIds(ids.data as BigInt64Array, B, T, cfg.padTokenId) },
    };
  },
  inputNames: { required: ["input_ids"], optional: ["attention_mask", "token_type_ids"] },
  // positions start after the pad id
  maxSequenceLength: (cfg) => cfg.maxPositionEmbeddings - cfg.padTokenId - 1,
  exportDerivedInputs: (cfg) => [
    { name: "position_ids", rule: "pad-offset", padTokenId: cfg.padTokenId },
    ...(cfg.typeVocabSize <= 1 ? [{ name: "token_type_ids", rule: "zeros" } as const] : []),
  ],
  // the pooler and MLM head of pretraining checkpoints, and TF-era LayerNorm names
  checkpointRules: () => [
    { ignore: /roberta\.pooler\..+/ },
    { ignore: /lm_head\..+/ },
    { ignore: "roberta.embeddings.position_ids" },
    { pattern: /(.+)\.LayerNorm\.gamma/, to: "$1.LayerNorm.weight" },
    { pattern: /(.+)\.LayerNorm\.beta/, to: "$1.LayerNorm.bias" },
  ],
};
