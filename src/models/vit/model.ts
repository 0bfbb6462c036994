/**
 * ViTForImageClassification as HuggingFace defines it: patch embedding, CLS token, learned
 * positions, pre-norm encoder blocks with exact-erf GELU, final LayerNorm, linear head on CLS.
 */
import * as b from "../../ir/builder.ts";
import { checkpoint } from "../../ir/checkpoint.ts";
import { attention, dropout, geluMlp, layerNorm, linear } from "../../ir/functional.ts";
import type { Dim } from "../../ir/dtype-shape.ts";
import type { Value } from "../../ir/graph.ts";
import type { ParamScope } from "../../nn/params.ts";
import { DROPOUT_KEYS } from "../dropout-keys.ts";
import { adaptedLinears, encoderLinearSites } from "../encoder-sites.ts";
import type { FamilyEntry, ForwardOptions, LinearSite, ModelFamily, ModelOutputs } from "../types.ts";
import { type ViTConfig, parseViTConfig } from "./config.ts";

export interface ViTInputs {
  pixelValues: Value; // [B, C, H, W]
}

const P = "vit.";
const layerPath = (i: number) => `${P}encoder.layer.${i}`;

function linearSites(cfg: ViTConfig): LinearSite[] {
  return encoderLinearSites({
    layers: `${P}encoder.layer`,
    selfAttention: "attention",
    numLayers: cfg.numHiddenLayers,
    hidden: cfg.hiddenSize,
    heads: cfg.numAttentionHeads,
    intermediate: cfg.intermediateSize,
  });
}

function parameterShapes(cfg: ViTConfig): Map<string, number[]> {
  const d = cfg.hiddenSize;
  const p = cfg.patchSize;
  const n = (cfg.imageSize / p) ** 2;
  const m = new Map<string, number[]>([
    [`${P}embeddings.cls_token`, [1, 1, d]],
    [`${P}embeddings.position_embeddings`, [1, n + 1, d]],
    [`${P}embeddings.patch_embeddings.projection.weight`, [d, cfg.numChannels, p, p]],
    [`${P}embeddings.patch_embeddings.projection.bias`, [d]],
  ]);
  for (const s of linearSites(cfg)) {
    const bias = s.name === "query" || s.name === "key" || s.name === "value" ? cfg.qkvBias : true;
    m.set(`${s.path}.weight`, [s.outFeatures, s.inFeatures]);
    if (bias) m.set(`${s.path}.bias`, [s.outFeatures]);
  }
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    for (const ln of ["layernorm_before", "layernorm_after"]) {
      m.set(`${layerPath(l)}.${ln}.weight`, [d]);
      m.set(`${layerPath(l)}.${ln}.bias`, [d]);
    }
  }
  m.set(`${P}layernorm.weight`, [d]);
  m.set(`${P}layernorm.bias`, [d]);
  m.set("classifier.weight", [cfg.numLabels, d]);
  m.set("classifier.bias", [cfg.numLabels]);
  return m;
}

/** Conv2d with kernel = stride = patch, written as a reshape and one GEMM. */
function patchEmbed(s: ParamScope, cfg: ViTConfig, px: Value): Value {
  const [B, C] = px.shape as [Dim, number];
  const p = cfg.patchSize;
  const g = cfg.imageSize / p;
  const patches = b.reshape(b.transpose(b.reshape(px, [B, C, g, p, g, p]), [0, 2, 4, 1, 3, 5]), [B, g * g, C * p * p]);
  const w = b.reshape(s.get(`${P}embeddings.patch_embeddings.projection.weight`), [cfg.hiddenSize, C * p * p]);
  return linear(patches, w, s.get(`${P}embeddings.patch_embeddings.projection.bias`)); // [B, N, d]
}

function forward(s: ParamScope, cfg: ViTConfig, { pixelValues }: ViTInputs, opts: ForwardOptions): ModelOutputs {
  const B = pixelValues.shape[0];
  const d = cfg.hiddenSize;
  const sites = linearSites(cfg);
  const drop = (x: Value, p: number, k: number) => (opts.dropout ? dropout(x, p, opts.dropout.seed + k, opts.dropout.source) : x);
  // sites reading the same input go in one call, so the adapter reads that input once
  const dense = (x: Value, group: LinearSite[]) => adaptedLinears(s, x, group, opts.hook);
  const weightBias = (site: LinearSite): [Value, Value | undefined] => {
    const bias = `${site.path}.bias`;
    return [s.get(`${site.path}.weight`), s.has(bias) ? s.get(bias) : undefined];
  };
  const hp = opts.dropout?.hidden ?? 0;
  const ap = opts.dropout?.attention ?? 0;

  const cls = b.expand(s.get(`${P}embeddings.cls_token`), [B, 1, d]);
  let h = b.concat([cls, patchEmbed(s, cfg, pixelValues)], 1); // [B, T, d]
  h = drop(b.add(h, s.get(`${P}embeddings.position_embeddings`)), hp, DROPOUT_KEYS.embeddings);

  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const lp = layerPath(l);
    const [q, k, v, o, fc1, fc2] = sites.slice(6 * l, 6 * l + 6);
    const layerIn = h;
    const ln = (name: string, x: Value) => layerNorm(x, s.get(`${lp}.${name}.weight`), s.get(`${lp}.${name}.bias`), cfg.layerNormEps);
    const x = ln("layernorm_before", h);
    const [qy, ky, vy] = dense(x, [q, k, v]);
    const ctx = attention(qy, ky, vy, {
      heads: cfg.numAttentionHeads,
      dropout: opts.dropout && ap > 0 ? { p: ap, seed: opts.dropout.seed + DROPOUT_KEYS.attention(l), source: opts.dropout.source } : undefined,
    });
    h = b.add(drop(dense(ctx, [o])[0], hp, DROPOUT_KEYS.attentionOutput(l)), h);
    const mlp = geluMlp(ln("layernorm_after", h), ...weightBias(fc1), ...weightBias(fc2), (v, k) => opts.hook?.(v, [k === 1 ? fc1 : fc2])[0]);
    h = b.add(drop(mlp, hp, DROPOUT_KEYS.mlpOutput(l)), h);
    if (opts.checkpointLayers) checkpoint([layerIn], [h]);
  }
  const lastHiddenState = layerNorm(h, s.get(`${P}layernorm.weight`), s.get(`${P}layernorm.bias`), cfg.layerNormEps);
  const clsOut = b.reshape(b.slice(lastHiddenState, 1, 0, 1), [B, d]);
  const logits = linear(clsOut, s.get("classifier.weight"), s.get("classifier.bias"));
  return { logits, lastHiddenState };
}

export const vit: ModelFamily<ViTConfig, ViTInputs> = {
  modelType: "vit",
  task: "image-classification",
  parseConfig: parseViTConfig,
  shape: (cfg) => ({ hidden: cfg.hiddenSize, heads: cfg.numAttentionHeads, layers: cfg.numHiddenLayers }),
  parameterShapes,
  headParameters: () => ["classifier.weight", "classifier.bias"],
  linearSites,
  inputs: (s, cfg, batch) => ({
    pixelValues: s.graph.input("pixel_values", "float32", [batch, cfg.numChannels, cfg.imageSize, cfg.imageSize]),
  }),
  forward,
  feeds: (_cfg, hf) => ({ pixel_values: hf.pixel_values }),
  inputNames: { required: ["pixel_values"], optional: [] },
  // the pooler of ViTModel checkpoints: ViTForImageClassification reads the CLS token instead
  checkpointRules: () => [{ ignore: /vit\.pooler\..+/ }],
};

/** ViT: ViTForImageClassification. */
export const vitFamily: FamilyEntry = { modelType: "vit", heads: { "image-classification": vit } };
