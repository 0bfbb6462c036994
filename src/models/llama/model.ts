/**
 * LlamaForCausalLM (model types llama and mistral) and Qwen2ForCausalLM as HuggingFace defines
 * them: token embedding, pre-norm decoder layers (RMSNorm → grouped-query attention with rotary
 * positions → residual, RMSNorm → SwiGLU MLP → residual), final RMSNorm, LM head (or the
 * embedding, tied). Positions are 0…T−1: batches are right-padded, so padding never shifts them.
 * With a KV cache (generation) the step takes position ids (left padding shifts them), the past
 * keys (after rotation) and values of every layer, and returns them extended by this step's.
 */
import * as b from "../../ir/builder.ts";
import { dropout, linear, rmsNorm, rotary, scaledDotProduct, swiglu } from "../../ir/functional.ts";
import type { Value } from "../../ir/graph.ts";
import type { ParamScope } from "../../nn/params.ts";
import type { HostTensor } from "../../tensor/host.ts";
import { DROPOUT_KEYS } from "../dropout-keys.ts";
import { adaptedLinears } from "../encoder-sites.ts";
import { addDims, mulDims } from "../../ir/dtype-shape.ts";
import type { FamilyEntry, ForwardOptions, KeyValue, LinearSite, LlamaCppLayout, ModelFamily } from "../types.ts";
import type { DecoderHead } from "./head.ts";
import { sequenceClassificationHead } from "./sequence-head.ts";
import { type DecoderConfig, checkSequenceLength, parseDecoderConfig } from "./config.ts";
import { rotaryTables } from "./rope.ts";
import { checkpoint } from "../../ir/checkpoint.ts";

export interface DecoderInputs {
  inputIds: Value; // [B, T] int64
  attentionMask: Value; // [B, T] int64; [B, P+T] with a cache
  cache?: {
    positionIds: Value; // [B, T] int64
    past: KeyValue[]; // per layer, [B, H_kv, P, dh]
  };
}

const layerPath = (l: number) => `model.layers.${l}`;
const EMBED = "model.embed_tokens.weight";
const LM_HEAD = "lm_head.weight";

/** Per layer, in forward order: q, k, v, o (self_attn), gate, up, down (mlp). */
export function decoderLinearSites(cfg: DecoderConfig): LinearSite[] {
  const d = cfg.hiddenSize;
  const q = cfg.numAttentionHeads * cfg.headDim;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const m = cfg.intermediateSize;
  const sites: LinearSite[] = [];
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const lp = layerPath(l);
    const add = (module: string, name: string, inFeatures: number, outFeatures: number, heads?: LinearSite["heads"]) =>
      sites.push({ path: `${lp}.${module}.${name}`, name, layer: l, inFeatures, outFeatures, ...(heads ? { heads } : {}) });
    const dim = cfg.headDim;
    const H = cfg.numAttentionHeads;
    add("self_attn", "q_proj", d, q, { side: "out", count: H, dim });
    // K/V heads are read by H / H_kv query heads each (the adapter's GQA rule)
    add("self_attn", "k_proj", d, kv, { side: "out", count: cfg.numKeyValueHeads, dim, queryHeads: H });
    add("self_attn", "v_proj", d, kv, { side: "out", count: cfg.numKeyValueHeads, dim, queryHeads: H });
    add("self_attn", "o_proj", q, d, { side: "in", count: H, dim });
    add("mlp", "gate_proj", d, m);
    add("mlp", "up_proj", d, m);
    add("mlp", "down_proj", m, d);
  }
  return sites;
}

function hasBias(cfg: DecoderConfig, name: string): boolean {
  if (name === "q_proj" || name === "k_proj" || name === "v_proj") return cfg.qkvBias;
  return name === "o_proj" ? cfg.oBias : cfg.mlpBias;
}

function bodyShapes(cfg: DecoderConfig): Map<string, number[]> {
  const d = cfg.hiddenSize;
  const m = new Map<string, number[]>([[EMBED, [cfg.vocabSize, d]]]);
  for (const s of decoderLinearSites(cfg)) {
    m.set(`${s.path}.weight`, [s.outFeatures, s.inFeatures]);
    if (hasBias(cfg, s.name)) m.set(`${s.path}.bias`, [s.outFeatures]);
  }
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    m.set(`${layerPath(l)}.input_layernorm.weight`, [d]);
    m.set(`${layerPath(l)}.post_attention_layernorm.weight`, [d]);
  }
  m.set("model.norm.weight", [d]);
  return m;
}

/**
 * Additive mask [B, 1, n·T, T] for query rows grouped n per K/V head (row j·T + t is position t):
 * key s is kept when s ≤ t and attention_mask[s] = 1.
 */
function groupedCausalMask(mask01: Value, n: number): Value {
  const [B, T] = mask01.shape as number[];
  const causal = new Float32Array(n * T * T);
  for (let j = 0; j < n; j++) for (let t = 0; t < T; t++) for (let s = 0; s <= t; s++) causal[(j * T + t) * T + s] = 1;
  const keep = b.mul(b.constant(mask01.graph, causal, [1, 1, n * T, T]), b.reshape(mask01, [B, 1, 1, T]));
  return b.mul(b.sub(1, keep), -3.4028234663852886e38);
}

/**
 * The same mask for a step with a KV cache: keys are the P past positions then the T new ones,
 * so query t (cache position P + t) keeps key s when s < P + t + 1 and attention_mask[s] = 1.
 */
function cachedCausalMask(mask01: Value, inputIds: Value, pastKey: Value, n: number): Value {
  const [B, S] = mask01.shape;
  const T = inputIds.shape[1];
  const keys = b.reshape(b.arange(mask01, 1), [1, S]);
  const limits = b.reshape(b.add(b.arange(inputIds, 1), b.add(b.size(pastKey, 2), 1)), [T, 1]);
  const causal = b.reshape(b.cast(b.less(keys, limits), "float32"), [1, T, S]);
  const rows = b.reshape(b.expand(causal, [n, T, S]), [1, 1, mulDims(n, T), S]);
  const keep = b.mul(rows, b.reshape(mask01, [B, 1, 1, S]));
  return b.mul(b.sub(1, keep), -3.4028234663852886e38);
}

/**
 * cos and sin [B, 1, T, dh] of each token's position, gathered from tables over every position the
 * config allows. Dynamic NTK scaling changes the angles only past max_position_embeddings, which
 * the tables (and generation's length check) never reach, so its tables are the unscaled ones.
 */
function gatheredRope(cfg: DecoderConfig, positionIds: Value): { cos: Value; sin: Value } {
  const P = cfg.maxPositionEmbeddings;
  const [B, T] = positionIds.shape;
  const tables = rotaryTables(cfg, P);
  const rows = (t: Float32Array) => b.reshape(b.gather(b.constant(positionIds.graph, t, [P, cfg.headDim]), positionIds), [B, 1, T, cfg.headDim]);
  return { cos: rows(tables.cos), sin: rows(tables.sin) };
}

/**
 * Grouped-query attention: the n = H / H_kv query heads of each K/V head (HF's repeat_kv: query
 * head h reads K/V head ⌊h / n⌋) are stacked along the sequence axis, so each K/V head is used
 * by one [n·T, dh] × [dh, T] product and never copied.
 */
function groupedAttention(
  cfg: DecoderConfig,
  q: Value,
  k: Value,
  v: Value,
  rope: { cos: Value; sin: Value },
  mask: Value,
  drop: ForwardOptions["dropout"],
  layer: number,
  cache?: { past: KeyValue; present: KeyValue[] },
): Value {
  const [B, T] = q.shape;
  const H = cfg.numAttentionHeads;
  const Hkv = cfg.numKeyValueHeads;
  const n = H / Hkv;
  const dh = cfg.headDim;
  // [T, dh] tables broadcast over both; gathered [B, 1, T, dh] ones need an axis for the query groups
  const perGroup = (t: Value) => (t.rank === 2 ? t : b.reshape(t, [B, 1, 1, T, dh]));
  const qh = rotary(b.transpose(b.reshape(q, [B, T, Hkv, n, dh]), [0, 2, 3, 1, 4]), perGroup(rope.cos), perGroup(rope.sin)); // [B, Hkv, n, T, dh]
  let kh = rotary(b.transpose(b.reshape(k, [B, T, Hkv, dh]), [0, 2, 1, 3]), rope.cos, rope.sin); // [B, Hkv, T, dh]
  let vh = b.transpose(b.reshape(v, [B, T, Hkv, dh]), [0, 2, 1, 3]);
  if (cache) {
    kh = b.concat([cache.past.key, kh], 2); // [B, Hkv, P+T, dh]
    vh = b.concat([cache.past.value, vh], 2);
    cache.present.push({ key: kh, value: vh });
  }
  const p = drop?.attention ?? 0;
  const grouped = b.reshape(qh, [B, Hkv, mulDims(n, T), dh]);
  const out = scaledDotProduct(grouped, kh, vh, {
    mask,
    dropout: drop && p > 0 ? { p, seed: drop.seed + DROPOUT_KEYS.attention(layer), source: drop.source } : undefined,
  }); // [B, Hkv, n·T, dh]
  // the [n·T, T] probabilities are computed again from q and k in the backward pass, as
  // FlashAttention does, rather than kept: one [n·T, dh] × [dh, T] product per layer, a few
  // percent of the layer's arithmetic, against T² values a head kept through the forward pass
  checkpoint([grouped, kh], [out]);
  return b.reshape(b.transpose(b.reshape(out, [B, Hkv, n, T, dh]), [0, 3, 1, 2, 4]), [B, T, H * dh]);
}

/**
 * The token embeddings of `ids` [B, T]. Over whole sequences (no `lastLogits`) the LM head reads a
 * frozen vocabulary matrix unpacked ([1, V, d], ParamScope.unpacked): ONNX Runtime would otherwise
 * hold two pre-packed copies of it beside it, the head's and its backward pass's (2 GiB at
 * Llama-3.2-1B), while packing it afresh costs little in a product of hundreds of rows.
 * Generation's one-row head keeps the packed copy. A tied embedding is looked up in the head's
 * form, so that one initializer holds its bytes.
 */
function embedTokens(s: ParamScope, cfg: DecoderConfig, ids: Value, opts: ForwardOptions): Value {
  const table = cfg.tieWordEmbeddings && !opts.lastLogits && s.unpacked(EMBED);
  if (!table) return b.gather(s.get(EMBED), ids);
  const [B, T] = ids.shape;
  return b.reshape(b.gather(table, ids, 1), [B, T, cfg.hiddenSize]);
}

/** The decoder body: embedding, layers and the final norm; with a cache also each layer's keys and values. */
function decoderBody(s: ParamScope, cfg: DecoderConfig, inp: DecoderInputs, opts: ForwardOptions): { lastHiddenState: Value; present?: KeyValue[] } {
  const [, T] = inp.inputIds.shape as number[];
  const g = inp.inputIds.graph;
  const sites = decoderLinearSites(cfg);
  const hp = opts.dropout?.hidden ?? 0;
  const drop = (x: Value, k: number) => (opts.dropout && hp > 0 ? dropout(x, hp, opts.dropout.seed + k, opts.dropout.source) : x);
  // sites reading the same input go in one call, so the adapter reads that input once
  const dense = (x: Value, group: LinearSite[]) => adaptedLinears(s, x, group, opts.hook);
  const norm = (name: string, x: Value) => rmsNorm(x, s.get(`${name}.weight`), cfg.rmsNormEps);
  const n = cfg.numAttentionHeads / cfg.numKeyValueHeads;
  const mask01 = b.cast(inp.attentionMask, "float32");
  let rope: { cos: Value; sin: Value };
  let mask: Value;
  const present: KeyValue[] = [];
  if (inp.cache) {
    rope = gatheredRope(cfg, inp.cache.positionIds);
    mask = cachedCausalMask(mask01, inp.inputIds, inp.cache.past[0].key, n);
  } else {
    const tables = rotaryTables(cfg, T);
    rope = { cos: b.constant(g, tables.cos, [T, cfg.headDim]), sin: b.constant(g, tables.sin, [T, cfg.headDim]) };
    mask = groupedCausalMask(mask01, n);
  }

  let h = embedTokens(s, cfg, inp.inputIds, opts); // [B, T, d]
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const lp = layerPath(l);
    const [q, k, v, o, gate, up, down] = sites.slice(7 * l, 7 * l + 7);
    const layerIn = h;
    const [qy, ky, vy] = dense(norm(`${lp}.input_layernorm`, h), [q, k, v]);
    const ctx = groupedAttention(cfg, qy, ky, vy, rope, mask, opts.dropout, l, inp.cache && { past: inp.cache.past[l], present });
    h = b.add(h, drop(dense(ctx, [o])[0], DROPOUT_KEYS.attentionOutput(l)));
    const [gy, uy] = dense(norm(`${lp}.post_attention_layernorm`, h), [gate, up]);
    h = b.add(h, drop(dense(swiglu(gy, uy), [down])[0], DROPOUT_KEYS.mlpOutput(l)));
    if (opts.checkpointLayers) checkpoint([layerIn], [h]);
  }
  return { lastHiddenState: norm("model.norm", h), present: inp.cache && present };
}

/** The LM head (or the tied embedding) on every position, or on the last only (generation). */
const causalLmHead: DecoderHead = {
  task: "causal-lm",
  classSuffix: "ForCausalLM",
  shapes: (cfg) => (cfg.tieWordEmbeddings ? [] : [[LM_HEAD, [cfg.vocabSize, cfg.hiddenSize]]]),
  headParameters: (cfg) => [cfg.tieWordEmbeddings ? EMBED : LM_HEAD],
  ignore: (cfg) => (cfg.tieWordEmbeddings ? [{ ignore: LM_HEAD }] : []),
  logits(s, cfg, inp, lastHiddenState, opts) {
    const [B] = lastHiddenState.shape;
    const read = opts.lastLogits ? b.reshape(b.gather(lastHiddenState, b.sub(b.size(inp.inputIds, 1), 1), 1), [B, 1, cfg.hiddenSize]) : lastHiddenState;
    const name = cfg.tieWordEmbeddings ? EMBED : LM_HEAD;
    const unpacked = !opts.lastLogits && s.unpacked(name);
    const head = (x: Value) => (unpacked ? b.matmul(x, unpacked, { transB: true }) : linear(x, s.get(name)));
    return { logits: head(read), head }; // logits [B, T or 1, vocab]
  },
};

/** HuggingFace's class-name prefix of each model type ("LlamaForCausalLM"). */
const CLASS_PREFIX: Record<DecoderConfig["modelType"], string> = { llama: "Llama", mistral: "Mistral", qwen2: "Qwen2" };

/**
 * The llama.cpp architecture each model type's causal LM runs as: Mistral as "llama"; Qwen2 as
 * "qwen2", whose NeoX rotation is HF's rotate-half, so its Q/K rows keep HF's order.
 */
const LLAMA_CPP: Record<DecoderConfig["modelType"], LlamaCppLayout> = {
  llama: { architecture: "llama", permuteQK: true, ropeFreqs: true },
  mistral: { architecture: "llama", permuteQK: true, ropeFreqs: true },
  qwen2: { architecture: "qwen2", permuteQK: false, ropeFreqs: false },
};

function family(modelType: DecoderConfig["modelType"], head: DecoderHead): ModelFamily<DecoderConfig, DecoderInputs> {
  const generates = head.task === "causal-lm";
  return {
    modelType,
    architecture: CLASS_PREFIX[modelType] + head.classSuffix,
    task: head.task,
    parseConfig: parseDecoderConfig,
    shape: (cfg) => ({ hidden: cfg.hiddenSize, heads: cfg.numAttentionHeads, layers: cfg.numHiddenLayers }),
    parameterShapes: (cfg) => new Map([...bodyShapes(cfg), ...head.shapes(cfg)]),
    headParameters: head.headParameters,
    linearSites: decoderLinearSites,
    inputs: (s, cfg, batch, seqLen) => {
      const T = seqLen ?? 128;
      if (typeof T === "number") checkSequenceLength(cfg, T);
      head.checkBatch?.(cfg, batch);
      return {
        inputIds: s.graph.input("input_ids", "int64", [batch, T]),
        attentionMask: s.graph.input("attention_mask", "int64", [batch, T]),
      };
    },
    cacheInputs: generates
      ? (s, cfg, batch, seqLen, past) => {
          const g = s.graph;
          const kv = (name: string) => g.input(name, "float32", [batch, cfg.numKeyValueHeads, past, cfg.headDim]);
          return {
            inputIds: g.input("input_ids", "int64", [batch, seqLen]),
            attentionMask: g.input("attention_mask", "int64", [batch, addDims(past, seqLen)]),
            cache: {
              positionIds: g.input("position_ids", "int64", [batch, seqLen]),
              past: Array.from({ length: cfg.numHiddenLayers }, (_, l) => ({ key: kv(`past_key_values.${l}.key`), value: kv(`past_key_values.${l}.value`) })),
            },
          };
        }
      : undefined,
    forward: (s, cfg, inp, opts) => {
      const { lastHiddenState, present } = decoderBody(s, cfg, inp, opts);
      return { ...head.logits(s, cfg, inp, lastHiddenState, opts), lastHiddenState, present };
    },
    feeds: (_cfg, hf): Record<string, HostTensor> => {
      const ids = hf.input_ids;
      const [B, T] = ids.shape;
      return { input_ids: ids, attention_mask: hf.attention_mask ?? { dtype: "int64", shape: [B, T], data: new BigInt64Array(B * T).fill(1n) } };
    },
    inputNames: { required: ["input_ids"], optional: ["attention_mask"] },
    adapterTargets: ["q_proj", "k_proj", "v_proj"],
    quantizableBase: true,
    maxSequenceLength: (cfg) => cfg.maxPositionEmbeddings,
    checkpointRules: (cfg) => [{ ignore: /rotary_emb\.inv_freq$/ }, ...head.ignore(cfg)],
  };
}

/**
 * The decoder families: causal LM (the default) and sequence classification
 * (LlamaForCausalLM / LlamaForSequenceClassification, and Mistral's and Qwen2's).
 */
const decoder = (modelType: DecoderConfig["modelType"]): FamilyEntry => ({
  modelType,
  heads: {
    "causal-lm": { ...family(modelType, causalLmHead), llamaCpp: LLAMA_CPP[modelType] },
    "text-classification": family(modelType, sequenceClassificationHead(LM_HEAD)),
  },
});

export const llamaFamily = decoder("llama");
export const mistralFamily = decoder("mistral");
export const qwen2Family = decoder("qwen2");
