/**
 * RobertaForMaskedLM as HuggingFace defines it: the shared encoder, then the LM head dense → GELU
 * → LayerNorm → decoder tied to the word embeddings plus a bias, logits [B, T, vocab] at every
 * position. Used to pretrain an encoder; built only on request (family.ts: published RoBERTa
 * checkpoints name RobertaForMaskedLM and are fine-tuned as classifiers), so pretraining names the
 * task, and its folder loads with the classification head (lm_head.* ignored, a new head).
 */
import { gelu, layerNorm, linear } from "../../ir/functional.ts";
import { type EncoderHead, encoderFamily } from "../text-encoder.ts";
import { body } from "./model.ts";

const maskedLmHead: EncoderHead = {
  task: "masked-lm",
  shapes: (cfg) => [
    ["lm_head.dense.weight", [cfg.hiddenSize, cfg.hiddenSize]],
    ["lm_head.dense.bias", [cfg.hiddenSize]],
    ["lm_head.layer_norm.weight", [cfg.hiddenSize]],
    ["lm_head.layer_norm.bias", [cfg.hiddenSize]],
    ["lm_head.bias", [cfg.vocabSize]],
  ],
  logits: (s, cfg, h) => {
    const x = layerNorm(
      gelu(linear(h, s.get("lm_head.dense.weight"), s.get("lm_head.dense.bias"))),
      s.get("lm_head.layer_norm.weight"),
      s.get("lm_head.layer_norm.bias"),
      cfg.layerNormEps,
    );
    return linear(x, s.get("roberta.embeddings.word_embeddings.weight"), s.get("lm_head.bias"));
  },
};

export const robertaMaskedLm = encoderFamily(body, "RobertaForMaskedLM", maskedLmHead);
