/**
 * Tiny decoders for the GGUF tests, built from the hf-tiny-lm weights and configs with a
 * tokenizer.json written here in the layout HF's tokenizers library saves:
 * - byte-level BPE (GPT-2 byte alphabet, merges), sized to each model's vocab_size, with Qwen2's
 *   split regex for qwen2;
 * - for llama, a SentencePiece-style BPE as HF converts Llama 2's (byte fallback, "▁" for
 *   spaces, `<0x00>`…`<0xFF>`, merges listed for every split of a merged piece), with the
 *   embedding and output matrices grown to its 336 ids (new rows random, the first 128 kept).
 * The fixtures' own llama tokenizer is word-level, which llama.cpp has no equivalent of.
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AdapterSet } from "../src/adapters/adapter-set.ts";
import { toFloat32 } from "../src/io/dtype-convert.ts";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { createAdapter } from "../src/pipeline/context.ts";
import type { LoadedModel } from "../src/models/load.ts";
import { Rng } from "../src/tensor/random.ts";
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

const SPM_VOCAB_SIZE = 336;
// merged pieces in rank order; every split of each into two vocabulary pieces is a listed merge
const SPM_MERGES: [string, string][] = [
  ["▁", "t"],
  ["h", "e"],
  ["▁t", "he"],
  ["▁", "c"],
  ["a", "t"],
  ["▁c", "at"],
  ["▁", "s"],
  ["▁s", "at"],
  ["▁", "▁"],
  ["e", "r"],
  ["i", "n"],
  ["o", "r"],
  ["▁", "w"],
  ["▁w", "or"],
  ["l", "d"],
  ["▁wor", "ld"],
  ["l", "l"],
  ["e", "ll"],
  ["H", "ell"],
  ["Hell", "o"],
  ["▁", "Hello"],
  ["▁", "a"],
  ["▁a", "t"],
  ["▁", "at"],
  ["▁", "e"],
  ["▁e", "n"],
];

/**
 * Copy the tiny Llama into `dir` with a SentencePiece-style BPE tokenizer and its vocabulary
 * size; returns `dir`. Spaces become "▁" by Llama 2's normalizer (Prepend, Replace), or with
 * `metaspace` by the Metaspace pre-tokenizer newer tokenizer.json files use.
 */
export function tinyLlamaWithSentencePiece(dir: string, o: { metaspace?: boolean } = {}): string {
  const special = ["<unk>", "<s>", "</s>"];
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  // no "ß", "Q", emoji or newline: those go through byte fallback
  const chars = ["▁", ..."abcdefghijklmnopqrstuvwxyz", ..."HW,.!'é0123456789"];
  const pieces = [...new Set([...special, ...bytes, ...SPM_MERGES.map(([a, b]) => a + b), ...chars])];
  const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: o.metaspace
      ? null
      : {
          type: "Sequence",
          normalizers: [
            { type: "Prepend", prepend: "▁" },
            { type: "Replace", pattern: { String: " " }, content: "▁" },
          ],
        },
    pre_tokenizer: o.metaspace ? { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false } : null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: SPM_MERGES.map(([a, b]) => [a, b]),
    },
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({
      bos_token: "<s>",
      eos_token: "</s>",
      unk_token: "<unk>",
      add_bos_token: true,
      add_eos_token: false,
      chat_template:
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}",
    }),
  );
  const config = JSON.parse(readFileSync(join(LM, "llama", "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, vocab_size: SPM_VOCAB_SIZE }));
  const weights = readSafetensors(join(LM, "llama", "model.safetensors"));
  const rng = new Rng(7);
  const grown = new Map(
    [...weights.tensors].map(([key, t]) => {
      const data = toFloat32(t, key);
      if (key !== "model.embed_tokens.weight" && key !== "lm_head.weight") return [key, { dtype: "F32" as const, shape: t.shape, data }];
      const cols = t.shape[1];
      const out = rng.normalArray(SPM_VOCAB_SIZE * cols, 0.02);
      out.set(data);
      return [key, { dtype: "F32" as const, shape: [SPM_VOCAB_SIZE, cols], data: out }];
    }),
  );
  writeSafetensors(join(dir, "model.safetensors"), grown);
  return dir;
}
