/**
 * RobertaForMaskedLM as HuggingFace defines it: the encoder, then the LM head dense → GELU →
 * LayerNorm → decoder tied to the word embeddings plus a bias, logits [B, T, vocab] at every
 * position. Used to pretrain an encoder; its folder loads as the classification family too
 * (the lm_head.* tensors are ignored there and a new classifier is initialised).
 */
import { gelu, layerNorm, linear } from "../../ir/functional.ts";
import type { ModelFamily } from "../types.ts";
import type { RobertaConfig } from "./config.ts";
import { type RobertaInputs, encode, encoderShapes, roberta } from "./model.ts";

function lmHeadShapes(cfg: RobertaConfig): [string, number[]][] {
  const d = cfg.hiddenSize;
  return [
    ["lm_head.dense.weight", [d, d]],
    ["lm_head.dense.bias", [d]],
    ["lm_head.layer_norm.weight", [d]],
    ["lm_head.layer_norm.bias", [d]],
    ["lm_head.bias", [cfg.vocabSize]],
  ];
}

export const robertaMaskedLm: ModelFamily<RobertaConfig, RobertaInputs> = {
  ...roberta,
  task: "masked-lm",
  parameterShapes: (cfg) => new Map([...encoderShapes(cfg), ...lmHeadShapes(cfg)]),
  headParameters: (cfg) => lmHeadShapes(cfg).map(([k]) => k),
  forward(s, cfg, inp, opts) {
    const h = encode(s, cfg, inp, opts);
    const x = layerNorm(
      gelu(linear(h, s.get("lm_head.dense.weight"), s.get("lm_head.dense.bias"))),
      s.get("lm_head.layer_norm.weight"),
      s.get("lm_head.layer_norm.bias"),
      cfg.layerNormEps,
    );
    const logits = linear(x, s.get("roberta.embeddings.word_embeddings.weight"), s.get("lm_head.bias"));
    return { logits, lastHiddenState: h };
  },
};
