/**
 * Tiny decoders with byte-level BPE tokenizers for the GGUF tests: the hf-tiny-lm weights and
 * configs, and a tokenizer.json written here in the layout HF's tokenizers library saves (GPT-2
 * byte alphabet, merges), sized to each model's vocab_size, with Qwen2's split regex for qwen2.
 * The fixtures' own llama tokenizer is word-level, which llama.cpp has no equivalent of.
 */
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AdapterSet } from "../src/adapters/adapter-set.ts";
import { createAdapter } from "../src/pipeline/context.ts";
import type { LoadedModel } from "../src/models/load.ts";
import { randomizeAdapter } from "./helpers.ts";

const LM = "test/fixtures/hf-tiny-lm";

/** GPT-2's byte → character map for the bytes a tokenizer below uses (space Ġ, newline Ċ, printable ASCII as itself). */
const byteChar = (b: number) => (b > 32 && b < 127 ? String.fromCharCode(b) : String.fromCharCode(256 + b));

const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface Spec {
  special: string[];
  /** Special tokens after the vocabulary (Qwen2) or before it (Llama). */
  specialFirst: boolean;
  lastChar: number;
  merges: [string, string][];
  pre: object;
  config: Record<string, unknown>;
}

const SPECS: Record<"llama" | "qwen2", Spec> = {
  llama: {
    special: ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"],
    specialFirst: true,
    lastChar: 126,
    // 6 specials + Ġ Ċ + 94 printable characters + 26 merges = 128
    merges: Array.from({ length: 26 }, (_, i) => ["Ġ", String.fromCharCode(97 + i)] as [string, string]),
    pre: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    config: {
      bos_token: "<s>",
      eos_token: "</s>",
      unk_token: "<unk>",
      add_bos_token: false,
      chat_template: "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}",
    },
  },
  qwen2: {
    special: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    specialFirst: false,
    lastChar: 120,
    // Ġ Ċ + 88 printable characters + 3 merges + 3 specials = 96
    merges: [
      ["Ġ", "t"],
      ["h", "e"],
      ["Ġt", "he"],
    ],
    pre: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: QWEN2_SPLIT }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    config: {
      eos_token: "<|im_end|>",
      pad_token: "<|endoftext|>",
      add_bos_token: false,
      chat_template:
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    },
  },
};

/** Copy the tiny `family` model into `dir` with a byte-level BPE tokenizer; returns `dir`. */
export function tinyLmWithBpe(family: "llama" | "qwen2", dir: string): string {
  const s = SPECS[family];
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(LM, family, f), join(dir, f));
  const chars = [byteChar(32), byteChar(10), ...Array.from({ length: s.lastChar - 32 }, (_, i) => byteChar(33 + i))];
  const words = [...chars, ...s.merges.map(([a, b]) => a + b)];
  const offset = s.specialFirst ? s.special.length : 0;
  const vocab = Object.fromEntries(words.map((w, i) => [w, i + offset]));
  const specialIds = s.special.map((_, i) => (s.specialFirst ? i : words.length + i));
  s.special.forEach((t, i) => {
    vocab[t] = specialIds[i];
  });
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: s.special.map((content, i) => ({
      id: specialIds[i],
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: s.pre,
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: s.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(s.config));
  return dir;
}

/** A random qkv_depth adapter on every linear layer whose LoRA modules have ranks 4 (attention), 3 (gate, up) and 2 (down). */
export function mixedRankAdapter(model: LoadedModel, seed: number): AdapterSet {
  const set = createAdapter(model, {
    construction: "qkv_depth",
    ranks: [4, 3, 2, 3],
    targetModules: "all-linear",
    groupRanks: { down_proj: [2, 3, 2, 2], "gate_proj+up_proj": [3, 3, 2, 2] },
  }).set;
  return randomizeAdapter(set, seed, 0.3);
}
