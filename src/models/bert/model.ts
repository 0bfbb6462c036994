/**
 * BertForSequenceClassification and BertForTokenClassification as HuggingFace defines them: the
 * shared post-norm encoder (text-encoder.ts) under "bert.", with positions 0..T−1 (no offset, pads
 * included) and token types. The sequence head is the pooler (dense → tanh on [CLS]) and
 * `classifier`; the pooler belongs to the pretrained body, initialised as HF does where a
 * checkpoint has none.
 */
import * as b from "../../ir/builder.ts";
import { linear } from "../../ir/functional.ts";
import { tokenClassificationHead } from "../token-head.ts";
import { type EncoderHead, type EncoderBody, type PositionScheme, encoderFamily } from "../text-encoder.ts";
import { parseBertConfig } from "./config.ts";
import type { FamilyEntry } from "../types.ts";

const positions: PositionScheme = { limit: (cfg) => cfg.maxPositionEmbeddings };

const sequenceHead: EncoderHead = {
  task: "text-classification",
  shapes: (cfg) => [
    ["classifier.weight", [cfg.numLabels, cfg.hiddenSize]],
    ["classifier.bias", [cfg.numLabels]],
  ],
  optional: (cfg) => [
    ["bert.pooler.dense.weight", [cfg.hiddenSize, cfg.hiddenSize]],
    ["bert.pooler.dense.bias", [cfg.hiddenSize]],
  ],
  logits: (s, cfg, h, drop) => {
    const cls = b.reshape(b.slice(h, 1, 0, 1), [h.shape[0], cfg.hiddenSize]);
    const pooled = b.tanh(linear(cls, s.get("bert.pooler.dense.weight"), s.get("bert.pooler.dense.bias")));
    return linear(drop(pooled, 0), s.get("classifier.weight"), s.get("classifier.bias"));
  },
};

const body: EncoderBody = { modelType: "bert", prefix: "bert.", positions, parseConfig: parseBertConfig };

const bert = encoderFamily(body, "BertForSequenceClassification", sequenceHead);
const bertTokens = encoderFamily(body, "BertForTokenClassification", tokenClassificationHead);

/** BERT: sequence classification (the default head) and token classification. */
export const bertFamily: FamilyEntry = { modelType: "bert", heads: { "text-classification": bert, "token-classification": bertTokens } };
