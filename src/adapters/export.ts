/**
 * Any adapter as a standard PEFT LoRA folder. Every adapted site's update is
 * ΔW = s · (U_in R̄)ᵀ (R̄: R[p,l], averaged over query-head groups for GQA K/V), a matrix of rank
 * ≤ r_in, so it is exactly LoRA with lora_A = U_inᵀ [r_in, in] and lora_B = s · R̄ᵀ [out, r_in];
 * a transposed site (heads on its input) has ΔW = s · U_in R, so lora_A = R, lora_B = s · U_in.
 * The scaling is folded into B and every module's lora_alpha equals its rank (PEFT's scaling
 * alpha / r = 1). `maxRank` keeps the k leading singular directions of each ΔW and reports the
 * relative error ‖ΔW − ΔW_k‖_F / ‖ΔW‖_F.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, FormatError } from "../errors.ts";
import { float32Inputs, writeSafetensors } from "../io/safetensors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import type { WeightMap } from "../nn/params.ts";
import { type Dense, matmul, scale, transpose2d } from "../tensor/dense.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import { leftSingularVectors, qr, singularValues } from "../tensor/linalg.ts";
import { type AdapterSet, groupState } from "./adapter-set.ts";
import { tensorIndex } from "./constructions.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, type ModelContext, recordedBase } from "./format.ts";
import { loraKeys } from "./lora.ts";
import { meanOverQueryHeads, sliceFactorsR } from "./reference.ts";
import type { LinearSite } from "../nn/sites.ts";

/** One PEFT LoRA module (A and B of a linear layer), as a TensLoRA adapter exports to PEFT. */
export interface LoraModule {
  site: LinearSite;
  /** [r, in]. */
  a: Dense;
  /** [out, r], the scaling folded in. */
  b: Dense;
  /** With a rank cap: ‖ΔW − ΔW_k‖_F / ‖ΔW‖_F of the truncation (0 when nothing was cut). */
  relativeError?: number;
}

/** The best rank-k approximation of B·A as a pair, through the QR factors of B and Aᵀ. */
function truncate(b: Dense, a: Dense, k: number): { a: Dense; b: Dense; relativeError: number } {
  const qb = qr(b);
  const qa = qr(transpose2d(a));
  const m = matmul(qb.r, transpose2d(qa.r)); // B A = Q_b M Q_aᵀ
  const sigma = singularValues(m);
  const total = sigma.reduce((s, v) => s + v * v, 0);
  const kept = Math.min(k, m.shape[0]);
  const cut = sigma.slice(kept).reduce((s, v) => s + v * v, 0);
  const { u } = leftSingularVectors(m, kept);
  return {
    b: matmul(qb.q, u), // [out, k]
    a: matmul(matmul(transpose2d(u), m), transpose2d(qa.q)), // [k, in]
    relativeError: total > 0 ? Math.sqrt(cut / total) : 0,
  };
}

/** Every adapted site of `set` as a LoRA pair (optionally truncated to `maxRank`). */
export function loraModules(set: AdapterSet, maxRank?: number): LoraModule[] {
  if (maxRank !== undefined && (!Number.isInteger(maxRank) || maxRank < 1)) throw new ConfigError(`--max-rank must be an integer ≥ 1, got ${maxRank}`);
  const s = set.config.scaling;
  const out: LoraModule[] = [];
  for (const group of set.groups) {
    const state = groupState(set, group);
    group.grid.forEach((row, p) =>
      row.forEach((site, l) => {
        const view = group.members[p];
        // LoRA's slice is (Aᵀ, Bᵀ), so its pair comes back as it is, B scaled
        const tensor = state.tensors[tensorIndex(group.construction, group.shape, p, l).tensor];
        const { uIn, r } = sliceFactorsR(state.construction, state.shape, tensor, state.headLayout, p, l);
        const rv = view.kv ? meanOverQueryHeads(r, view.kv.heads, view.kv.dim) : r;
        const [a, b] = view.transposed ? [rv, scale(uIn, s)] : [transpose2d(uIn), scale(transpose2d(rv), s)];
        const m =
          maxRank !== undefined && maxRank < a.shape[0]
            ? { site, ...truncate(b, a, maxRank) }
            : { site, a, b, ...(maxRank !== undefined ? { relativeError: 0 } : {}) };
        const bad = describeNonFinite(m.a.data) || describeNonFinite(m.b.data);
        if (bad)
          throw new FormatError(`exporting ${site.path} gives ${bad} (scaling ${s}); the adapter's values overflow float32, use another checkpoint or retrain`);
        out.push(m);
      }),
    );
  }
  return out;
}

/**
 * Every module zero-padded to the largest rank (A gains zero rows, B zero columns): the same
 * B·A, and one rank, so a reader that applies one alpha / r to every module (vLLM) or one alpha
 * over each module's own rank (llama.cpp's convert_lora_to_gguf.py) scales each module by 1.
 */
export function padToUniformRank(modules: LoraModule[]): LoraModule[] {
  const rank = Math.max(...modules.map((m) => m.a.shape[0]));
  return modules.map((m) => {
    const [r, cols] = m.a.shape;
    if (r === rank) return m;
    const out = m.b.shape[0];
    const a = new Float64Array(rank * cols);
    a.set(m.a.data);
    const b = new Float64Array(out * rank);
    for (let i = 0; i < out; i++) b.set(m.b.data.subarray(i * r, (i + 1) * r), i * rank);
    return { ...m, a: { shape: [rank, cols], data: a }, b: { shape: [out, rank], data: b } };
  });
}

/** vLLM's allowed --max-lora-rank values (vllm/config/lora.py MaxLoRARanks). */
export const VLLM_MAX_LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512] as const;

/** The smallest --max-lora-rank vLLM accepts that holds `rank`, or undefined above its largest. */
export function vllmMaxLoraRank(rank: number): number | undefined {
  return VLLM_MAX_LORA_RANKS.find((v) => v >= rank);
}

/**
 * Which readers of the PEFT file written for `modules` (lora_alpha = r, alpha_pattern =
 * rank_pattern, the scale folded into lora_B) apply exactly B·A: PEFT (alpha_pattern / rank per
 * module) and vLLM (one lora_alpha / r, ranks from the tensors) always; llama.cpp's converter
 * (one lora_alpha over each tensor's rank, patterns ignored) only when every rank is r.
 */
export function loraReaders(modules: LoraModule[]): { peft: boolean; vllm: boolean; llama_cpp: boolean } {
  const r = commonRank(modules);
  return { peft: true, vllm: true, llama_cpp: modules.every((m) => m.a.shape[0] === r) };
}

/** The most common rank: PEFT's `r`; the others go to `rank_pattern`. */
export function commonRank(modules: LoraModule[]): number {
  const counts = new Map<number, number>();
  for (const m of modules) counts.set(m.a.shape[0], (counts.get(m.a.shape[0]) ?? 0) + 1);
  return [...counts].sort((x, y) => y[1] - x[1] || x[0] - y[0])[0][0];
}

/**
 * PEFT's adapter_config.json for `modules`: target_modules are the adapted sites' full paths (a
 * name such as "output.dense" would also match "attention.output.dense" by PEFT's suffix rule);
 * modules whose rank differs from `r` are listed in rank_pattern and alpha_pattern (alpha = rank).
 */
export function loraConfigJson(modules: LoraModule[], ctx: ModelContext, head: WeightMap): Record<string, unknown> {
  const r = commonRank(modules);
  const other = modules.filter((m) => m.a.shape[0] !== r);
  const headModules = [...new Set([...head.keys()].map((k) => k.replace(/\.(weight|bias)$/, "").split(".")[0]))];
  return {
    peft_type: "LORA",
    r,
    lora_alpha: r,
    rank_pattern: Object.fromEntries(other.map((m) => [m.site.path, m.a.shape[0]])),
    alpha_pattern: Object.fromEntries(other.map((m) => [m.site.path, m.a.shape[0]])),
    target_modules: modules.map((m) => m.site.path),
    layers_to_transform: null,
    use_rslora: false,
    lora_dropout: 0,
    bias: "none",
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: headModules.length ? headModules : null,
    base_model_name_or_path: recordedBase(ctx.baseModel) ?? null,
    task_type: ctx.taskType ?? null,
  };
}

/** Write `modules` (and the head, as modules_to_save) as a PEFT LoRA folder; the config last. */
export function saveLoraFolder(dir: string, modules: LoraModule[], ctx: ModelContext, head: WeightMap): void {
  mkdirSync(dir, { recursive: true });
  const tensors: WeightMap = new Map();
  for (const m of modules) {
    const k = loraKeys(m.site);
    tensors.set(k.a, { shape: m.a.shape, data: Float32Array.from(m.a.data) });
    tensors.set(k.b, { shape: m.b.shape, data: Float32Array.from(m.b.data) });
  }
  writeSafetensors(join(dir, ADAPTER_WEIGHTS), new Map([...float32Inputs(tensors), ...float32Inputs(head, "base_model.model.")]), { format: "pt" });
  writeFileAtomic(join(dir, ADAPTER_CONFIG), new TextEncoder().encode(JSON.stringify(loraConfigJson(modules, ctx, head), null, 2) + "\n"));
}
