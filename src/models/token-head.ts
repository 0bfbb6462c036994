/**
 * The token-classification head of BertForTokenClassification and RobertaForTokenClassification:
 * dropout, then one linear layer `classifier` on every position's hidden state, logits [B, T, labels].
 */
import { linear } from "../ir/functional.ts";
import type { EncoderHead } from "./text-encoder.ts";

export const tokenClassificationHead: EncoderHead = {
  task: "token-classification",
  shapes: (cfg) => [
    ["classifier.weight", [cfg.numLabels, cfg.hiddenSize]],
    ["classifier.bias", [cfg.numLabels]],
  ],
  logits: (s, _cfg, hidden, drop) => linear(drop(hidden, 0), s.get("classifier.weight"), s.get("classifier.bias")),
};
