/**
 * RobertaForSequenceClassification and RobertaForTokenClassification as HuggingFace defines
 * them: the shared post-norm encoder (text-encoder.ts) under "roberta.", with RoBERTa's positions
 * (pads keep the pad id, others count from pad + 1). The sequence head is dense → tanh →
 * out_proj on the <s> token.
 */
import * as b from "../../ir/builder.ts";
import { linear } from "../../ir/functional.ts";
import { tokenClassificationHead } from "../token-head.ts";
import { type EncoderHead, type EncoderBody, type PositionScheme, encoderFamily } from "../text-encoder.ts";
import { parseRobertaConfig } from "./config.ts";

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

const positions: PositionScheme = {
  // the table's first pad + 1 rows are never a real token's position
  limit: (cfg) => cfg.maxPositionEmbeddings - cfg.padTokenId - 1,
  feed: (cfg, ids, B, T) => robertaPositionIds(ids, B, T, cfg.padTokenId),
};

const sequenceHead: EncoderHead = {
  task: "text-classification",
  shapes: (cfg) => [
    ["classifier.dense.weight", [cfg.hiddenSize, cfg.hiddenSize]],
    ["classifier.dense.bias", [cfg.hiddenSize]],
    ["classifier.out_proj.weight", [cfg.numLabels, cfg.hiddenSize]],
    ["classifier.out_proj.bias", [cfg.numLabels]],
  ],
  logits: (s, cfg, h, drop) => {
    const cls = drop(b.reshape(b.slice(h, 1, 0, 1), [h.shape[0], cfg.hiddenSize]), 0);
    const pooled = drop(b.tanh(linear(cls, s.get("classifier.dense.weight"), s.get("classifier.dense.bias"))), 1);
    return linear(pooled, s.get("classifier.out_proj.weight"), s.get("classifier.out_proj.bias"));
  },
};

const body: EncoderBody = { modelType: "roberta", prefix: "roberta.", positions, parseConfig: parseRobertaConfig };

export const roberta = encoderFamily(body, "RobertaForSequenceClassification", sequenceHead);
export const robertaTokens = encoderFamily(body, "RobertaForTokenClassification", tokenClassificationHead);
