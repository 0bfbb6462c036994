/**
 * `--data` for a causal LM: a JSONL file (text, prompt/completion or messages records), a .txt
 * file or a folder of them; the held-out split is `--eval-data` or a seeded 10 % of the examples.
 */
import { buildLmExamples, holdOut, type LmExample, LmTokenizer, padIdOf, readLmData } from "../data/lm-data.ts";
import type { LoadedModel } from "../models/load.ts";
import type { DecoderConfig } from "../models/llama/config.ts";
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
    split = holdOut(train.examples, o.seed, o.data);
  }
  if (truncated) o.warn?.(`${truncated} example(s) were longer than --max-length ${o.maxLength} and were truncated`);
  return { data: lmTaskData(split, padIdOf(tok, model.config as DecoderConfig)), truncated };
}
