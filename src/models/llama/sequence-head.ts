/**
 * LlamaForSequenceClassification (and Mistral's, Qwen2's) as HuggingFace defines it: `score`, a
 * linear layer without bias, on the final-norm hidden state of each row's last token that is not
 * `pad_token_id` (the rightmost one, so left and right padding both work; a row of pads only
 * reads position 0, where torch's argmax over zeros lands). With no pad_token_id HF reads the last
 * position and refuses batches of more than one row; so does this head.
 */
import { ConfigError } from "../../errors.ts";
import * as b from "../../ir/builder.ts";
import { linear } from "../../ir/functional.ts";
import type { Value } from "../../ir/graph.ts";
import type { DecoderConfig } from "./config.ts";
import type { DecoderHead } from "./head.ts";

const SCORE = "score.weight";

/**
 * One-hot [B, T] of each row's rightmost token other than `pad` (position 0 for a row of pads):
 * a token is picked when it is not a pad and no token after it is.
 */
function lastTokenSelector(inputIds: Value, pad: number): Value {
  const [B, T] = inputIds.shape;
  const notPad = b.add(b.cast(b.less(inputIds, pad), "float32"), b.cast(b.less(pad, inputIds), "float32")); // [B, T]
  const t = b.arange(inputIds, 1);
  const after = b.cast(b.less(b.reshape(t, [1, T]), b.reshape(t, [T, 1])), "float32"); // [s, t] = s > t
  const laterTokens = b.matmul(notPad, after); // [B, T]: tokens after t
  const last = b.mul(notPad, b.cast(b.less(laterTokens, 0.5), "float32"));
  const allPads = b.cast(b.less(b.reduceSum(notPad, [1], true), 0.5), "float32"); // [B, 1]
  const first = b.reshape(b.cast(b.less(t, 1), "float32"), [1, T]);
  return b.reshape(b.add(last, b.mul(allPads, first)), [B, 1, T]);
}

function pooled(cfg: DecoderConfig, inputIds: Value, hidden: Value): Value {
  const [B] = hidden.shape;
  if (cfg.padTokenId === undefined) return b.reshape(b.gather(hidden, b.sub(b.size(inputIds, 1), 1), 1), [B, cfg.hiddenSize]);
  return b.reshape(b.matmul(lastTokenSelector(inputIds, cfg.padTokenId), hidden), [B, cfg.hiddenSize]);
}

/** The sequence-classification head; `lmHead` is the causal LM's head weight a checkpoint may hold (not read). */
export function sequenceClassificationHead(lmHead: string): DecoderHead {
  return {
    task: "text-classification",
    classSuffix: "ForSequenceClassification",
    shapes: (cfg) => [[SCORE, [cfg.numLabels, cfg.hiddenSize]]],
    headParameters: () => [SCORE],
    ignore: () => [{ ignore: lmHead }],
    checkBatch(cfg, batch) {
      if (cfg.padTokenId === undefined && batch !== 1)
        throw new ConfigError(
          `config.json has no pad_token_id, so a sequence classifier cannot find the last token of a padded row (batch ${String(batch)}); set pad_token_id to the tokenizer's pad id (or its eos id), or classify one text at a time`,
        );
    },
    logits: (s, cfg, inp, hidden) => ({ logits: linear(pooled(cfg, inp.inputIds, hidden), s.get(SCORE)) }), // [B, labels]
  };
}
