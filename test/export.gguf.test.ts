/**
 * `export --to gguf` through the real runtime, llama.cpp (node-llama-cpp's prebuilt binary): on
 * the tiny Llama and Qwen2 (with byte-level BPE tokenizers) carrying a TensLoRA adapter whose
 * modules have ranks 2, 3 and 4, llama.cpp's greedy tokens from merged.gguf (F32) equal ours
 * from the merged weights, and so do base.gguf + adapter.gguf through `lora.adapters`; the files
 * load with no llama.cpp warning, and llama.cpp tokenises text as HF's tokenizer does. Q8_0's and
 * F16's agreement with our tokens is reported, not asserted (quantisation changes logits).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gguf as parseGguf } from "@huggingface/gguf";
import { Tokenizer } from "@huggingface/tokenizers";
import type { LlamaModel } from "node-llama-cpp";
import { saveAdapter } from "../src/adapters/format.ts";
import { exportAsGguf, type GgufOutType } from "../src/experiments/gguf-export.ts";
import { mergedWeights } from "../src/experiments/merge.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { mixedRankAdapter, tinyLmWithBpe } from "./gguf-fixtures.ts";
import { randomizeAdapter, tempDir } from "./helpers.ts";
import { llama, llamaCppGreedy as run, logs, ourGreedy, skip, warnings } from "./llama-cpp-runner.ts";

const PROMPT = [1, 20, 30, 40, 50];
const NEW_TOKENS = 10;

const TEXTS = ["the cat sat\nthe end", "Hello, world! 42"];

/** llama.cpp's greedy tokens after PROMPT, and its tokens of TEXTS. */
async function llamaCppGreedy(file: string, adapter?: string): Promise<{ tokens: number[]; texts: number[][] }> {
  const r = await run(file, PROMPT, NEW_TOKENS, { adapter, inspect: (m: LlamaModel) => TEXTS.map((s) => [...m.tokenize(s)]) });
  return { tokens: r.tokens, texts: r.inspected };
}

for (const family of ["llama", "qwen2"] as const) {
  test(`${family}: llama.cpp runs merged.gguf and base.gguf + adapter.gguf to our greedy tokens (F32); Q8_0 and F16 reported`, { skip }, async (t) => {
    const { dir, cleanup } = tempDir(`gguf-${family}`);
    try {
      mkdirSync(join(dir, "model"));
      const modelDir = tinyLmWithBpe(family, join(dir, "model"));
      const model = loadModel(modelDir);
      const set = mixedRankAdapter(model, 5);
      saveAdapter(join(dir, "adapter"), set, modelContext(model));
      const ours = await ourGreedy(model, mergedWeights(model, set), PROMPT, NEW_TOKENS);
      const out = (type: GgufOutType) => {
        const r = exportAsGguf(join(dir, "adapter"), join(dir, type), { model: modelDir, outType: type });
        return { r, file: (f: string) => join(dir, type, f) };
      };
      const f32 = out("f32");
      assert.deepEqual([...new Set(f32.r.modules.map((m) => m.rank))].sort(), [2, 3, 4], "modules of three ranks");
      logs.length = 0;
      const merged = await llamaCppGreedy(f32.file("merged.gguf"));
      assert.deepEqual(merged.tokens, ours, "merged.gguf (F32) vs our merged weights");
      const lora = await llamaCppGreedy(f32.file("base.gguf"), f32.file("adapter.gguf"));
      assert.deepEqual(lora.tokens, ours, "base.gguf + adapter.gguf (F32) vs our merged weights");
      assert.deepEqual(warnings(), [], "llama.cpp warns about nothing in the files");
      // the vocabulary: llama.cpp's tokenizer agrees with HF's
      const hf = new Tokenizer(JSON.parse(readFileSync(join(modelDir, "tokenizer.json"), "utf8")), {});
      TEXTS.forEach((text, i) => assert.deepEqual(merged.texts[i], hf.encode(text).ids, `tokens of ${JSON.stringify(text)}`));
      // the adapter file as convert_lora_to_gguf.py writes it
      const meta = (await parseGguf(f32.file("adapter.gguf"), { allowLocalFile: true })) as Awaited<ReturnType<typeof parseGguf>>;
      const md = meta.metadata as Record<string, unknown>;
      assert.equal(md["general.type"], "adapter");
      assert.equal(md["adapter.type"], "lora");
      assert.equal(md["general.architecture"], family);
      assert.equal(md["adapter.lora.alpha"], f32.r.alpha);
      assert.ok(
        meta.tensorInfos.some((x) => x.name === "blk.0.attn_q.weight.lora_a") && meta.tensorInfos.some((x) => x.name === "blk.1.ffn_down.weight.lora_b"),
      );
      const base = (await parseGguf(f32.file("merged.gguf"), { allowLocalFile: true })).metadata as Record<string, unknown>;
      assert.equal(base["tokenizer.ggml.model"], "gpt2");
      assert.equal(base["tokenizer.ggml.pre"], family === "qwen2" ? "qwen2" : "gpt-2");
      assert.equal(typeof base["tokenizer.chat_template"], "string");
      for (const type of ["f16", "q8_0"] as const) {
        const q = out(type);
        const a = await llamaCppGreedy(q.file("merged.gguf"));
        const b = await llamaCppGreedy(q.file("base.gguf"), q.file("adapter.gguf"));
        const same = (x: number[]) => x.filter((v, i) => v === ours[i]).length;
        const lead = (x: number[]) => x.findIndex((v, i) => v !== ours[i]);
        t.diagnostic(
          `${family} ${type}: merged ${same(a.tokens)}/${NEW_TOKENS} tokens equal ours (first difference at ${lead(a.tokens)}), base + adapter ${same(b.tokens)}/${NEW_TOKENS}`,
        );
      }
    } finally {
      cleanup();
    }
  });
}

test("export --to gguf refuses a tokenizer llama.cpp has no equivalent of, with the reason", () => {
  const { dir, cleanup } = tempDir("gguf-wordlevel");
  try {
    const model = loadModel("test/fixtures/hf-tiny-lm/llama");
    saveAdapter(join(dir, "a"), randomizeAdapter(createAdapter(model, { construction: "lora", ranks: 2 }).set, 1, 0.1), modelContext(model));
    assert.throws(
      () => exportAsGguf(join(dir, "a"), join(dir, "g"), { model: "test/fixtures/hf-tiny-lm/llama" }),
      /a WordLevel tokenizer .* has no llama.cpp equivalent .* convert_hf_to_gguf\.py/,
    );
  } finally {
    cleanup();
  }
});

after(async () => {
  if (!(llama instanceof Error)) await llama.dispose();
});
