/**
 * `export --to gguf` for what Llama 2 / Mistral 7B and Llama 3.1 checkpoints carry, through the
 * real runtime (llama.cpp by node-llama-cpp's prebuilt binary):
 * - a SentencePiece-style BPE tokenizer (byte fallback, "▁"): llama.cpp tokenises texts with
 *   spaces, unicode and bytes outside the vocabulary to the ids HF's tokenizer gives, decodes them
 *   back to the text, and merged.gguf and base.gguf + adapter.gguf give our greedy tokens;
 * - `rope_scaling` of type llama3 (factor and original_max_position_embeddings small enough that
 *   every rotary frequency but the fastest is scaled): llama.cpp, reading the `rope_freqs` tensor,
 *   gives our greedy tokens over a 40-token prompt from merged.gguf and from base.gguf +
 *   adapter.gguf, where the unscaled model continues otherwise.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gguf as parseGguf } from "@huggingface/gguf";
import { Tokenizer } from "@huggingface/tokenizers";
import type { LlamaModel } from "node-llama-cpp";
import { saveAdapter } from "../src/adapters/format.ts";
import { exportAsGguf, ropeFreqFactors } from "../src/experiments/gguf-export.ts";
import { checkByteTokens, checkMergesComplete, mergeScores, spaceHandling } from "../src/experiments/gguf-vocab-spm.ts";
import { mergedWeights } from "../src/experiments/merge.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { parseDecoderConfig } from "../src/models/llama/config.ts";
import { loadModel } from "../src/models/load.ts";
import { mixedRankAdapter, tinyLlamaWithSentencePiece, tinyLmWithBpe } from "./gguf-fixtures.ts";
import { tempDir } from "./helpers.ts";
import { llama, llamaCppGreedy, logs, ourGreedy, skip, warnings } from "./llama-cpp-runner.ts";

const NEW_TOKENS = 10;

/** Export `modelDir` with a random mixed-rank adapter as F32 GGUF under `dir`; returns the model, our merged weights and the files. */
function exported(dir: string, modelDir: string) {
  const model = loadModel(modelDir);
  const set = mixedRankAdapter(model, 3);
  saveAdapter(join(dir, "adapter"), set, modelContext(model));
  exportAsGguf(join(dir, "adapter"), join(dir, "gguf"), { model: modelDir, outType: "f32" });
  const file = (f: string) => join(dir, "gguf", f);
  return { model, weights: mergedWeights(model, set), merged: file("merged.gguf"), base: file("base.gguf"), adapter: file("adapter.gguf") };
}

// "x er": HF applies the merge e+r (rank 9) before ▁+e (rank 23), where joining the leftmost pair first would not
const ALL_TEXTS = ["the cat sat", "Hello world, the  cat at the end!", "ßé 🙂\nQ sat x er", " at"];

// HF's Metaspace adds no "▁" before a text that starts with a space, llama.cpp does: such texts are left out there
for (const metaspace of [false, true]) {
  test(`SentencePiece BPE (${metaspace ? "Metaspace pre-tokenizer" : "Llama 2 normalizer"}): llama.cpp tokenises and decodes as HF's tokenizer, and runs merged.gguf and base.gguf + adapter.gguf to our greedy tokens`, {
    skip,
  }, async () => {
    const { dir, cleanup } = tempDir("gguf-spm");
    const TEXTS = metaspace ? ALL_TEXTS.filter((t) => !t.startsWith(" ")) : ALL_TEXTS;
    try {
      mkdirSync(join(dir, "model"));
      const modelDir = tinyLlamaWithSentencePiece(join(dir, "model"), { metaspace });
      const { model, weights, merged, base, adapter } = exported(dir, modelDir);
      const hf = new Tokenizer(
        JSON.parse(readFileSync(join(modelDir, "tokenizer.json"), "utf8")),
        JSON.parse(readFileSync(join(modelDir, "tokenizer_config.json"), "utf8")),
      );
      const expected = TEXTS.map((s) => hf.encode(s, { add_special_tokens: false }).ids);
      // the texts reach merges, byte fallback (ß, 🙂, newline, Q) and a vocabulary character outside ASCII (é)
      assert.ok(expected[0].length < "the cat sat".length && expected[2].filter((id: number) => id >= 3 && id < 259).length >= 8);
      logs.length = 0;
      const bos = hf.encode(TEXTS[1]).ids[0];
      const prompt = [bos, ...expected[1]];
      const run = await llamaCppGreedy(merged, prompt, NEW_TOKENS, {
        inspect: (m: LlamaModel) =>
          TEXTS.map((s) => {
            const ids = [...m.tokenize(s)];
            return { ids, text: m.detokenize(ids) };
          }),
      });
      assert.deepEqual(warnings(), [], "llama.cpp warns about nothing in merged.gguf");
      run.inspected.forEach((r, i) => {
        assert.deepEqual(r.ids, expected[i], `tokens of ${JSON.stringify(TEXTS[i])}`);
        assert.equal(r.text, TEXTS[i], `decoded ${JSON.stringify(TEXTS[i])}`);
        assert.equal(hf.decode(expected[i]), TEXTS[i], `HF decodes ${JSON.stringify(TEXTS[i])}`);
      });
      const ours = await ourGreedy(model, weights, prompt, NEW_TOKENS);
      assert.deepEqual(run.tokens, ours, "merged.gguf (F32) vs our merged weights");
      assert.deepEqual((await llamaCppGreedy(base, prompt, NEW_TOKENS, { adapter })).tokens, ours, "base.gguf + adapter.gguf (F32) vs our merged weights");
      // HF's post-processor prepends BOS; llama.cpp does so from the metadata
      const md = (await parseGguf(merged, { allowLocalFile: true })).metadata as Record<string, unknown>;
      assert.equal(md["tokenizer.ggml.model"], "llama");
      assert.equal(md["tokenizer.ggml.add_bos_token"], true);
      assert.equal(md["tokenizer.ggml.bos_token_id"], bos);
      assert.equal(md["tokenizer.ggml.add_space_prefix"], true);
    } finally {
      cleanup();
    }
  });
}

test("llama3 rope scaling: llama.cpp reads rope_freqs and gives our greedy tokens over a long prompt (merged, and base + adapter)", { skip }, async () => {
  const { dir, cleanup } = tempDir("gguf-llama3");
  try {
    const scaledDir = join(dir, "scaled");
    mkdirSync(scaledDir);
    tinyLmWithBpe("llama", scaledDir);
    const cfgPath = join(scaledDir, "config.json");
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    // head_dim 16: wavelengths 2π·10⁴^(i/8) ≈ 6, 20, 63, …; 16 / 4 < 6 < 16 blends the first, the rest are divided by 4
    const ropeScaling = { rope_type: "llama3", factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, rope_scaling: ropeScaling }));
    const { model, weights, merged, base, adapter } = exported(dir, scaledDir);
    const prompt = Array.from({ length: 40 }, (_, i) => 6 + ((i * 37) % 120));
    const ours = await ourGreedy(model, weights, prompt, NEW_TOKENS);
    const unscaled = await ourGreedy(
      { ...model, config: { ...model.config, ropeScaling: { ...model.config.ropeScaling, type: "default" } } } as typeof model,
      weights,
      prompt,
      NEW_TOKENS,
    );
    assert.notDeepEqual(unscaled, ours, "the scaling changes the continuation");
    logs.length = 0;
    const run = await llamaCppGreedy(merged, prompt, NEW_TOKENS);
    assert.deepEqual(warnings(), [], "llama.cpp warns about nothing in merged.gguf");
    assert.deepEqual(run.tokens, ours, "merged.gguf (F32) vs our merged weights");
    assert.deepEqual((await llamaCppGreedy(base, prompt, NEW_TOKENS, { adapter })).tokens, ours, "base.gguf + adapter.gguf (F32) vs our merged weights");
    const tensors = (await parseGguf(merged, { allowLocalFile: true })).tensorInfos;
    assert.ok(tensors.some((t) => t.name === "rope_freqs.weight"));
  } finally {
    cleanup();
  }
});

test("rope_freqs for Llama 3.1 8B's rope_scaling: the factors llama.cpp's converter computes from the published formula", () => {
  const raw = {
    model_type: "llama",
    vocab_size: 32,
    hidden_size: 4096,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    max_position_embeddings: 131072,
    rope_theta: 500000,
    rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  };
  const factors = ropeFreqFactors(parseDecoderConfig(raw, "config.json"));
  assert.equal(factors.length, 64);
  // convert_hf_to_gguf.py: per frequency θ^(−2i/d), 1 below wavelength 8192/4, 8 above 8192, else 1 / ((1 − s) / 8 + s), s = (8192 / wavelength − 1) / (4 − 1)
  const expected = Array.from({ length: 64 }, (_, i) => {
    const wavelen = (2 * Math.PI) / 500000 ** (-(2 * i) / 128);
    if (wavelen < 8192 / 4) return 1;
    if (wavelen > 8192) return 8;
    const smooth = (8192 / wavelen - 1) / 3;
    return 1 / ((1 - smooth) / 8 + smooth);
  });
  factors.forEach((f, i) => assert.ok(Math.abs(f - expected[i]) < 1e-5 * expected[i], `factor ${i}: ${f} vs ${expected[i]}`));
  assert.ok(
    expected.some((e) => e > 1 && e < 8),
    "the blend region is reached",
  );
});

test("SentencePiece BPE that llama.cpp would read differently is refused with the reason", () => {
  const path = "tokenizer.json";
  const metaspace = (o: object) => ({ normalizer: null, pre_tokenizer: { type: "Metaspace", replacement: "▁", ...o } });
  assert.deepEqual(spaceHandling(metaspace({ prepend_scheme: "first", split: false }), path), { addSpacePrefix: true });
  assert.deepEqual(spaceHandling(metaspace({ prepend_scheme: "never", split: false }), path), { addSpacePrefix: false });
  assert.throws(() => spaceHandling(metaspace({ prepend_scheme: "first", split: true }), path), /whitespace handling llama.cpp does not reproduce/);
  const vocab = { a: 0, b: 1, c: 2, ab: 3, bc: 4, abc: 5 };
  checkMergesComplete(vocab, ["a b", "b c", "ab c", ["a", "bc"]], () => false, path);
  assert.throws(
    () => checkMergesComplete(vocab, ["a b", "b c", "ab c"], () => false, path),
    /"abc" splits into the pieces "a" \+ "bc", which are not a listed merge/,
  );
  assert.throws(() => checkByteTokens({ "<0x00>": 0 }, path), /without the byte tokens <0x01>, <0x02>, <0x03>, <0x04> \(and 251 more\)/);
  assert.equal(mergeScores(["a b", "b c", "ab c", "a bc"]).score("abc"), -2);
  assert.equal(mergeScores(["a b"]).score("a"), -1);
});

after(async () => {
  if (!(llama instanceof Error)) await llama.dispose();
});
