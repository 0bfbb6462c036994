/**
 * RobertaForMaskedLM as HuggingFace defines it: the shared encoder, then the LM head dense → GELU
 * → LayerNorm → decoder tied to the word embeddings plus a bias, logits [B, T, vocab] at every
 * position. Used to pretrain an encoder; built only on request (family.ts: published RoBERTa
 * checkpoints name RobertaForMaskedLM and are fine-tuned as classifiers), so pretraining names the
 * task, and its folder loads with the classification head (lm_head.* ignored, a new head).
 */
import * as b from "../../ir/builder.ts";
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

/**
 * The same parameters (so the folder is a plain RobertaForMaskedLM), but <s> (position 0) is
 * decoded by the tied decoder straight from its hidden state, without the LM head's dense and
 * LayerNorm: a pretraining objective on <s> then has to show in <s>'s own state. Through the LM
 * head it need not: the LayerNorm there removes whatever the dense maps onto its mean direction,
 * so <s> can keep a large input-independent part and a tiny content part that the head rescales,
 * and a classifier reading <s> (dense → tanh, no normalisation) sees an almost constant vector.
 */
const summaryMaskedLmHead: EncoderHead = {
  ...maskedLmHead,
  logits: (s, cfg, h, drop) => {
    const T = h.shape[1] as number;
    const first = linear(b.slice(h, 1, 0, 1), s.get("roberta.embeddings.word_embeddings.weight"), s.get("lm_head.bias"));
    return b.concat([first, maskedLmHead.logits(s, cfg, b.slice(h, 1, 1, T), drop)], 1);
  },
};

/** RobertaForMaskedLM pretrained with <s> decoded from its own state (summaryMaskedLmHead). */
export const robertaMaskedLmSummary = encoderFamily(body, "RobertaForMaskedLM", summaryMaskedLmHead);
