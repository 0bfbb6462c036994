/**
 * One update, whoever reads it. The PEFT export of an adapter whose modules have ranks 2, 3 and 4
 * is reloaded under each reader's documented rule, and the ΔW each applies is compared with ours
 * (the merged weights minus the base):
 * - PEFT: per module alpha_pattern[m] (else lora_alpha) / rank_pattern[m] (else r);
 * - vLLM (vllm/lora/peft_helper.py): one lora_alpha / r for every module, ranks from the tensors;
 * - llama.cpp's convert_lora_to_gguf.py: one adapter.lora.alpha = lora_alpha, patterns ignored,
 *   applied as alpha / (the tensor's own rank) (llama-adapter.h get_scale, rank = lora_b ne[0]).
 * The default export is right under PEFT and vLLM and wrong under llama.cpp for every module
 * whose rank is not r; --uniform-rank is right under all three; our adapter GGUF is right under
 * llama.cpp's rule. `export` reports exactly that, and vLLM's --max-lora-rank.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GGMLQuantizationType, gguf as parseGguf } from "@huggingface/gguf";
import { loraModules } from "../src/adapters/export.ts";
import { saveAdapter } from "../src/adapters/format.ts";
import { mergeAdapter } from "../src/adapters/merge.ts";
import { exportAsLora } from "../src/experiments/export.ts";
import { ggufTensorName, interleaveRopeRows, writeLoraGguf } from "../src/experiments/gguf-export.ts";
import { toFloat32 } from "../src/io/dtype-convert.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { modelContext } from "../src/pipeline/context.ts";
import type { DecoderConfig } from "../src/models/llama/config.ts";
import { loadModel } from "../src/models/load.ts";
import { cliAsync } from "./cli-helpers.ts";
import { mixedRankAdapter } from "./gguf-fixtures.ts";
import { maxRelDiff, tempDir } from "./helpers.ts";

const LLAMA = "test/fixtures/hf-tiny-lm/llama";

interface PeftFile {
  cfg: { r: number; lora_alpha: number; rank_pattern: Record<string, number>; alpha_pattern: Record<string, number>; target_modules: string[] };
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

function readPeft(dir: string): PeftFile {
  const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  const tensors = new Map([...readSafetensors(join(dir, "adapter_model.safetensors")).tensors].map(([k, e]) => [k, { shape: e.shape, data: toFloat32(e, k) }]));
  return { cfg, tensors };
}

/** scale · B·A, B [out, r] and A [r, in] row-major. */
function product(scale: number, b: { shape: number[]; data: Float32Array }, a: { shape: number[]; data: Float32Array }): Float64Array {
  const [out, r] = b.shape;
  const cols = a.shape[1];
  const w = new Float64Array(out * cols);
  for (let i = 0; i < out; i++) for (let k = 0; k < r; k++) for (let j = 0; j < cols; j++) w[i * cols + j] += scale * b.data[i * r + k] * a.data[k * cols + j];
  return w;
}

type Reader = (f: PeftFile, path: string, rank: number) => number;
const READERS: Record<"peft" | "vllm" | "llama_cpp", Reader> = {
  peft: (f, path) => (f.cfg.alpha_pattern[path] ?? f.cfg.lora_alpha) / (f.cfg.rank_pattern[path] ?? f.cfg.r),
  vllm: (f) => f.cfg.lora_alpha / f.cfg.r,
  llama_cpp: (f, _path, rank) => f.cfg.lora_alpha / rank,
};

test("the PEFT export under PEFT's, vLLM's and llama.cpp's converter's scaling rules; --uniform-rank and the GGUF adapter right under all", async () => {
  const model = loadModel(LLAMA);
  const set = mixedRankAdapter(model, 9);
  const merged = mergeAdapter(model.weights, set);
  const ours = (path: string) => {
    const k = `${path}.weight`;
    return merged.get(k)!.data.map((v, i) => v - model.weights.get(k)!.data[i]);
  };
  const { dir, cleanup } = tempDir("readers");
  try {
    saveAdapter(join(dir, "a"), set, modelContext(model));
    for (const uniformRank of [false, true]) {
      const out = join(dir, uniformRank ? "uniform" : "default");
      const result = exportAsLora(join(dir, "a"), out, { model: LLAMA, uniformRank });
      const file = readPeft(out);
      const right = { peft: true, vllm: true, llama_cpp: true };
      for (const path of file.cfg.target_modules) {
        const a = file.tensors.get(`base_model.model.${path}.lora_A.weight`)!;
        const b = file.tensors.get(`base_model.model.${path}.lora_B.weight`)!;
        const rank = b.shape[1];
        for (const [name, scale] of Object.entries(READERS)) {
          const err = maxRelDiff(Float32Array.from(product(scale(file, path, rank), b, a)), ours(path));
          const ok = err < 1e-5;
          if (!ok) right[name as keyof typeof right] = false;
          // wrong means wrong by r / rank, not by rounding
          if (!ok) assert.ok(rank !== file.cfg.r && err > 0.1, `${name} ${path}: rank ${rank}, r ${file.cfg.r}, relative error ${err}`);
        }
      }
      assert.deepEqual(right, uniformRank ? { peft: true, vllm: true, llama_cpp: true } : { peft: true, vllm: true, llama_cpp: false });
      assert.deepEqual(result.readers, right, "export reports the readers that apply the update");
      const top = Math.max(...result.modules.map((m) => m.rank));
      assert.equal(top, 4);
      assert.equal(result.vllm_max_lora_rank, 8, "vLLM's smallest allowed --max-lora-rank ≥ 4");
      if (uniformRank) assert.ok(result.modules.every((m) => m.rank === 4) && Object.keys(file.cfg.rank_pattern).length === 0);
    }
    // the GGUF adapter under llama.cpp's rule: alpha / lora_b's rank, Q/K rows in llama.cpp's order
    const modules = loraModules(set);
    const path = join(dir, "adapter.gguf");
    writeLoraGguf(path, model, modules, "f32");
    const parsed = await parseGguf(path, { allowLocalFile: true });
    const alpha = (parsed.metadata as Record<string, unknown>)["adapter.lora.alpha"] as number;
    const bytes = readFileSync(path);
    const tensor = (name: string) => {
      const info = parsed.tensorInfos.find((t) => t.name === name)!;
      assert.equal(info.dtype, GGMLQuantizationType.F32);
      const shape = info.shape.map(Number).reverse();
      const at = bytes.byteOffset + Number(parsed.tensorDataOffset + info.offset);
      return { shape, data: new Float32Array(bytes.buffer.slice(at, at + 4 * shape[0] * shape[1])) };
    };
    const cfg = model.config as DecoderConfig;
    for (const m of modules) {
      const gname = ggufTensorName(`${m.site.path}.weight`);
      const b = tensor(`${gname}.lora_b`);
      const w = product(alpha / b.shape[1], b, tensor(`${gname}.lora_a`));
      const heads = m.site.name === "q_proj" ? cfg.numAttentionHeads : m.site.name === "k_proj" ? cfg.numKeyValueHeads : undefined;
      const want = heads ? interleaveRopeRows(ours(m.site.path), heads, m.a.shape[1]) : ours(m.site.path);
      assert.ok(maxRelDiff(Float32Array.from(w), want) < 1e-5, `${gname}: llama.cpp's ΔW differs by ${maxRelDiff(Float32Array.from(w), want)}`);
    }
  } finally {
    cleanup();
  }
});

test("tenslora export prints the readers of the default file and vLLM's --max-lora-rank; --to gguf on a word-level tokenizer is one line and exit 1", async () => {
  const model = loadModel(LLAMA);
  const { dir, cleanup } = tempDir("readers-cli");
  try {
    saveAdapter(join(dir, "a"), mixedRankAdapter(model, 3), modelContext(model));
    const ok = await cliAsync(["export", join(dir, "a"), "--to", "lora", "--out", join(dir, "b"), "--model", LLAMA]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /read as this update by: PEFT, vLLM; not by llama\.cpp's convert_lora_to_gguf\.py \(ranks differ: add --uniform-rank, or use --to gguf\)/,
    );
    assert.match(ok.stdout, /vLLM: serve with --max-lora-rank 8 or more/);
    const bad = await cliAsync(["export", join(dir, "a"), "--to", "gguf", "--out", join(dir, "c"), "--model", LLAMA]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^tenslora: .*a WordLevel tokenizer/);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  } finally {
    cleanup();
  }
});
