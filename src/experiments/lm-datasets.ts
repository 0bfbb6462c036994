/**
 * `--data` for a causal LM: a JSONL file (text, prompt/completion or messages records), a .txt
 * file or a folder of them; the held-out split is `--eval-data` or a seeded 10 % of the examples.
 */
import { buildLmExamples, type LmExample, LmTokenizer, readLmData } from "../data/lm-data.ts";
import { ConfigError } from "../errors.ts";
import type { LoadedModel } from "../models/load.ts";
import type { DecoderConfig } from "../models/llama/config.ts";
import { Rng } from "../tensor/random.ts";
import { type TaskData, lmTaskData } from "../tasks/task-data.ts";

export interface LmDataOptions {
  data: string;
  evalData?: string;
  maxLength: number;
  truncation: boolean;
  packing: boolean;
  seed: number;
  warn?: (s: string) => void;
}

const EVAL_FRACTION = 0.1;

export function lmDataFor(model: LoadedModel, o: LmDataOptions): { data: TaskData; truncated: number } {
  const tok = new LmTokenizer(model.dir);
  const opts = { maxLength: o.maxLength, truncation: o.truncation, packing: o.packing };
  const train = buildLmExamples(tok, readLmData(o.data), opts, o.data);
  let split: { train: LmExample[]; test: LmExample[] };
  let truncated = train.truncated;
  if (o.evalData) {
    const test = buildLmExamples(tok, readLmData(o.evalData), opts, o.evalData);
    truncated += test.truncated;
    split = { train: train.examples, test: test.examples };
  } else {
    if (train.examples.length < 2)
      throw new ConfigError(`${o.data} gives ${train.examples.length} example; a held-out split needs at least 2, or pass --eval-data`);
    const order = new Rng(o.seed ^ 0x1e57).permutation(train.examples.length);
    const nTest = Math.max(1, Math.round(EVAL_FRACTION * train.examples.length));
    split = { test: Array.from(order.subarray(0, nTest), (i) => train.examples[i]), train: Array.from(order.subarray(nTest), (i) => train.examples[i]) };
  }
  if (truncated) o.warn?.(`${truncated} example(s) were longer than --max-length ${o.maxLength} and were truncated`);
  const cfg = model.config as DecoderConfig;
  const pad = tok.tok.padId ?? cfg.padTokenId ?? tok.eosId ?? cfg.eosTokenId ?? 0;
  return { data: lmTaskData(split, pad), truncated };
}
