/**
 * Decoders (llama, mistral, qwen2) as GGUF for llama.cpp and Ollama, laid out as llama.cpp's own
 * converters write them:
 *
 * - a model file (convert_hf_to_gguf.py): HF tensor names mapped to llama.cpp's (`token_embd`,
 *   `blk.N.attn_q`, …), the architecture's hyperparameters, the tokenizer (gguf-vocab.ts), and for
 *   the "llama" architecture (Llama and Mistral) the rows of Q and K reordered within each head
 *   from HF's rotate-half halves to llama.cpp's interleaved pairs. Qwen2 runs llama.cpp's NeoX
 *   rotation, which is HF's order, so its rows stay. Norms and biases stay F32; with Q8_0, a
 *   matrix whose rows are not whole 32-value blocks falls back to F16, as convert_hf_to_gguf does.
 * - a LoRA adapter file (convert_lora_to_gguf.py): `blk.N.<name>.weight.lora_a` [r, in] and
 *   `.lora_b` [out, r] (Q/K rows reordered as the model's), `adapter.lora.alpha`. llama.cpp
 *   scales each pair by alpha / (that pair's rank) (llama-adapter.h get_scale); every lora_b is
 *   written pre-multiplied by rank / alpha, so the product is the update whatever the ranks.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { commonRank, loraModules, type LoraModule } from "../adapters/export.ts";
import { ConfigError } from "../errors.ts";
import { type GgmlType, type GgufTensor, type GgufValue, fitsQ8_0, gguf, writeGguf } from "../io/gguf-writer.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import type { DecoderConfig } from "../models/llama/config.ts";
import { FAMILIES, type LoadedModel } from "../models/load.ts";
import type { LlamaCppLayout } from "../models/types.ts";
import type { WeightMap } from "../nn/params.ts";
import { inverseFrequencies } from "../models/llama/rope.ts";
import { type ExportedModule, exportBaseModel, exportedModules } from "./export.ts";
import { tokenizerMetadata } from "./gguf-vocab.ts";
import { loadTrainedModel } from "./infer.ts";
import { mergedWeights } from "./merge.ts";

/** The tensor types `export --to gguf` writes: float32, float16, or llama.cpp's 8-bit Q8_0. */
export const GGUF_OUT_TYPES = ["f32", "f16", "q8_0"] as const;
/** A GGUF tensor type (one of `GGUF_OUT_TYPES`). */
export type GgufOutType = (typeof GGUF_OUT_TYPES)[number];

/** llama.cpp's general.file_type (llama_ftype) of each out type. */
const FILE_TYPE: Record<GgufOutType, number> = { f32: 0, f16: 1, q8_0: 7 };

/** The llama.cpp layout of `model`; a model llama.cpp would run differently is refused with the reason. */
export function ggufArch(model: LoadedModel): LlamaCppLayout {
  const arch = model.family.llamaCpp;
  if (!arch) {
    const types = Object.values(FAMILIES).filter((f) => f.heads["causal-lm"]?.llamaCpp);
    throw new ConfigError(
      `GGUF export needs a causal LM (${types.map((f) => f.modelType).join(", ")}); ${model.dir} is a ${model.family.modelType} ${model.family.task} model`,
    );
  }
  const cfg = model.config as DecoderConfig;
  const rope = cfg.ropeScaling.type;
  if (rope !== "default" && rope !== "linear" && !(rope === "llama3" && arch.ropeFreqs)) {
    throw new ConfigError(
      `${model.dir}/config.json: rope_scaling type "${rope}" is not written to GGUF for ${cfg.modelType} by this export (supported: none, linear${arch.ropeFreqs ? ", llama3" : ""}); convert the merged safetensors (tenslora merge) with llama.cpp's convert_hf_to_gguf.py`,
    );
  }
  return arch;
}

const LAYER_NAMES: Record<string, string> = {
  input_layernorm: "attn_norm",
  post_attention_layernorm: "ffn_norm",
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};
const TOP_NAMES: Record<string, string> = { "model.embed_tokens": "token_embd", "model.norm": "output_norm", lm_head: "output" };

/** llama.cpp's name of a HF decoder tensor ("model.layers.3.self_attn.q_proj.weight" → "blk.3.attn_q.weight"). */
export function ggufTensorName(hfKey: string): string {
  const m = /^(.*)\.(weight|bias)$/.exec(hfKey);
  const layer = m && /^model\.layers\.(\d+)\.(.+)$/.exec(m[1]);
  const name = layer ? LAYER_NAMES[layer[2]] && `blk.${layer[1]}.${LAYER_NAMES[layer[2]]}` : m && TOP_NAMES[m[1]];
  if (!m || !name) throw new ConfigError(`GGUF export: no llama.cpp name for tensor ${hfKey}`);
  return `${name}.${m[2]}`;
}

/** Query heads for q_proj, key/value heads for k_proj: the heads whose rows llama.cpp reorders, or undefined. */
function ropeHeads(hfKey: string, cfg: DecoderConfig): number | undefined {
  if (/self_attn\.q_proj\.(weight|bias)$/.test(hfKey)) return cfg.numAttentionHeads;
  if (/self_attn\.k_proj\.(weight|bias)$/.test(hfKey)) return cfg.numKeyValueHeads;
  return undefined;
}

/**
 * Rows of a [heads·d, cols] matrix in llama.cpp's rotary order: within each head, row
 * 2i + s takes HF's row s·d/2 + i (HF rotates the halves, llama.cpp adjacent pairs).
 */
export function interleaveRopeRows(data: Float32Array, heads: number, cols: number): Float32Array {
  const rows = data.length / cols;
  const d = rows / heads;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < d / 2; i++)
      for (let s = 0; s < 2; s++) out.set(data.subarray((h * d + s * (d / 2) + i) * cols, (h * d + s * (d / 2) + i + 1) * cols), (h * d + 2 * i + s) * cols);
  return out;
}

/** Rows as llama.cpp's architecture wants them. */
function llamaCppRows(hfKey: string, data: Float32Array, cols: number, model: LoadedModel, arch: LlamaCppLayout): Float32Array {
  const heads = arch.permuteQK ? ropeHeads(hfKey, model.config as DecoderConfig) : undefined;
  return heads ? interleaveRopeRows(data, heads, cols) : data;
}

function tensorType(shape: readonly number[], outType: GgufOutType): GgmlType {
  if (shape.length < 2 || outType === "f32") return "F32";
  return outType === "q8_0" && fitsQ8_0(shape) ? "Q8_0" : "F16";
}

function hyperparameters(model: LoadedModel, arch: LlamaCppLayout): [string, GgufValue][] {
  const c = model.config as DecoderConfig;
  const a = arch.architecture;
  const out: [string, GgufValue][] = [
    [`${a}.vocab_size`, gguf.u32(c.vocabSize)],
    [`${a}.context_length`, gguf.u32(c.maxPositionEmbeddings)],
    [`${a}.embedding_length`, gguf.u32(c.hiddenSize)],
    [`${a}.block_count`, gguf.u32(c.numHiddenLayers)],
    [`${a}.feed_forward_length`, gguf.u32(c.intermediateSize)],
    [`${a}.attention.head_count`, gguf.u32(c.numAttentionHeads)],
    [`${a}.attention.head_count_kv`, gguf.u32(c.numKeyValueHeads)],
    [`${a}.attention.key_length`, gguf.u32(c.headDim)],
    [`${a}.attention.value_length`, gguf.u32(c.headDim)],
    [`${a}.rope.dimension_count`, gguf.u32(c.headDim)],
    [`${a}.rope.freq_base`, gguf.f32(c.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rmsNormEps)],
  ];
  if (c.ropeScaling.type === "linear") out.push([`${a}.rope.scaling.type`, gguf.str("linear")], [`${a}.rope.scaling.factor`, gguf.f32(c.ropeScaling.factor)]);
  return out;
}

/**
 * llama.cpp's `rope_freqs.weight` for Llama 3.1's "llama3" scaling: per rotary pair, the factor
 * llama.cpp divides the unscaled frequency θ^(−2i/dh) by, i.e. unscaled / scaled frequency as the
 * model computes them (1 for short wavelengths, `factor` for long ones, a blend between).
 */
export function ropeFreqFactors(cfg: DecoderConfig): Float32Array {
  const scaled = inverseFrequencies(cfg, cfg.maxPositionEmbeddings);
  const plain = inverseFrequencies({ ...cfg, ropeScaling: { ...cfg.ropeScaling, type: "default" } }, cfg.maxPositionEmbeddings);
  return Float32Array.from(scaled, (f, i) => plain[i] / f);
}

const modelName = (model: LoadedModel) => (model.rawConfig._name_or_path as string | undefined) || model.dir.split("/").filter(Boolean).at(-1) || "model";

/** Write `weights` (the model's, merged or not) as a llama.cpp model GGUF at `path`. */
export function writeModelGguf(path: string, model: LoadedModel, weights: WeightMap, outType: GgufOutType): { tensors: number; types: Record<string, number> } {
  const arch = ggufArch(model);
  const cfg = model.config as DecoderConfig;
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(arch.architecture)],
    ["general.type", gguf.str("model")],
    ["general.name", gguf.str(modelName(model))],
    ["general.file_type", gguf.u32(FILE_TYPE[outType])],
    ...(outType === "q8_0" ? ([["general.quantization_version", gguf.u32(2)]] as [string, GgufValue][]) : []),
    ...hyperparameters(model, arch),
    ...tokenizerMetadata(model.dir, cfg.vocabSize, model.rawConfig),
  ]);
  const tensors: GgufTensor[] = [...weights]
    .filter(([k]) => !(cfg.tieWordEmbeddings && k === "lm_head.weight"))
    .map(([k, t]) => ({
      name: ggufTensorName(k),
      shape: t.shape,
      data: llamaCppRows(k, t.data, t.shape.length > 1 ? t.shape[1] : 1, model, arch),
      type: tensorType(t.shape, outType),
    }));
  if (cfg.ropeScaling.type === "llama3") tensors.push({ name: "rope_freqs.weight", shape: [cfg.headDim / 2], data: ropeFreqFactors(cfg), type: "F32" });
  writeGguf(path, meta, tensors);
  const types: Record<string, number> = {};
  for (const t of tensors) types[t.type] = (types[t.type] ?? 0) + 1;
  return { tensors: tensors.length, types };
}

/** Write `modules` as a llama.cpp LoRA adapter GGUF for `model` at `path`; returns the alpha written. */
export function writeLoraGguf(path: string, model: LoadedModel, modules: LoraModule[], outType: "f32" | "f16"): { alpha: number } {
  const arch = ggufArch(model);
  const alpha = commonRank(modules);
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(arch.architecture)],
    ["general.type", gguf.str("adapter")],
    ["general.name", gguf.str(`${modelName(model)} LoRA`)],
    ["adapter.type", gguf.str("lora")],
    ["adapter.lora.alpha", gguf.f32(alpha)],
  ]);
  const type: GgmlType = outType === "f32" ? "F32" : "F16";
  const tensors: GgufTensor[] = modules.flatMap((m) => {
    const key = `${m.site.path}.weight`;
    const name = ggufTensorName(key);
    const r = m.a.shape[0];
    const b = Float32Array.from(m.b.data, (v) => (v * r) / alpha);
    return [
      { name: `${name}.lora_a`, shape: m.a.shape, data: Float32Array.from(m.a.data), type },
      { name: `${name}.lora_b`, shape: m.b.shape, data: llamaCppRows(key, b, r, model, arch), type },
    ];
  });
  writeGguf(path, meta, tensors);
  return { alpha };
}

export const GGUF_FILES = { adapter: "adapter.gguf", base: "base.gguf", merged: "merged.gguf" } as const;

/** What exporting a decoder adapter as a llama.cpp LoRA GGUF wrote. */
export interface GgufExportResult {
  dir: string;
  arch: string;
  outType: GgufOutType;
  files: string[];
  modules: ExportedModule[];
  /** The adapter file's adapter.lora.alpha. */
  alpha: number;
}

/**
 * Ollama's Modelfile for the merged model, and for the base with the adapter on top. `ollama
 * create` resolves a relative FROM / ADAPTER path against the Modelfile's folder (and takes a
 * FROM path that does not exist for a model name to pull), so the files stay together. No
 * TEMPLATE: Ollama picks its own template from the GGUF's tokenizer.chat_template when it knows it.
 */
export function modelfiles(): { merged: string; adapter: string } {
  return {
    merged: `# the fine-tuned model: ollama create NAME -f Modelfile\nFROM ./${GGUF_FILES.merged}\n`,
    adapter: `# the base model with the LoRA adapter on top: ollama create NAME -f Modelfile.adapter\nFROM ./${GGUF_FILES.base}\nADAPTER ./${GGUF_FILES.adapter}\n`,
  };
}

/**
 * `tenslora export --to gguf`: `outDir` gets adapter.gguf (F32, else F16), base.gguf and
 * merged.gguf (as `outType`), and Ollama Modelfiles for both ways of running them.
 */
export function exportAsGguf(adapterDir: string, outDir: string, o: { model?: string; outType?: GgufOutType; maxRank?: number } = {}): GgufExportResult {
  const outType = o.outType ?? "f16";
  if (!GGUF_OUT_TYPES.includes(outType)) throw new ConfigError(`--outtype ${outType} is not one of ${GGUF_OUT_TYPES.join(", ")}`);
  const tm = loadTrainedModel(exportBaseModel(adapterDir, outDir, o.model), adapterDir);
  if (!tm.adapter) throw new ConfigError(`${adapterDir} holds no adapter; GGUF export needs an adapter folder (e.g. RUN_DIR/best)`);
  const arch = ggufArch(tm.model);
  const modules = loraModules(tm.adapter, o.maxRank);
  mkdirSync(outDir, { recursive: true });
  const { alpha } = writeLoraGguf(join(outDir, GGUF_FILES.adapter), tm.model, modules, outType === "f32" ? "f32" : "f16");
  writeModelGguf(join(outDir, GGUF_FILES.base), tm.model, tm.model.weights, outType);
  writeModelGguf(join(outDir, GGUF_FILES.merged), tm.model, mergedWeights(tm.model, tm.adapter), outType);
  const mf = modelfiles();
  writeFileAtomic(join(outDir, "Modelfile"), new TextEncoder().encode(mf.merged));
  writeFileAtomic(join(outDir, "Modelfile.adapter"), new TextEncoder().encode(mf.adapter));
  return {
    dir: outDir,
    arch: arch.architecture,
    outType,
    files: [GGUF_FILES.adapter, GGUF_FILES.base, GGUF_FILES.merged, "Modelfile", "Modelfile.adapter"].filter((f) => existsSync(join(outDir, f))),
    modules: exportedModules(modules),
    alpha,
  };
}
