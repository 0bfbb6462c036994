/** The library side of `tenslora export`: an adapter folder as a PEFT LoRA folder. */
import { copyFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { type LoraModule, loraModules, loraReaders, padToUniformRank, saveLoraFolder, vllmMaxLoraRank } from "../adapters/export.ts";
import { ADAPTER_CONFIG } from "../adapters/format.ts";
import { ConfigError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { takeOutFolder } from "../io/out-folder.ts";
import { loadAdapterForConfig } from "../pipeline/adapter-for-config.ts";
import { LABELS_FILE } from "../train/artifacts.ts";

export interface ExportedModule {
  path: string;
  rank: number;
  relative_error?: number;
}

/** What exporting a TensLoRA adapter as PEFT LoRA wrote, and how closely the LoRA matches. */
export interface ExportResult {
  dir: string;
  modules: ExportedModule[];
  /** Readers that apply exactly the exported update (see loraReaders). */
  readers: { peft: boolean; vllm: boolean; llama_cpp: boolean };
  /** The smallest vLLM --max-lora-rank that holds every module (null: above vLLM's largest). */
  vllm_max_lora_rank: number | null;
}

export const exportedModules = (modules: LoraModule[]): ExportedModule[] =>
  modules.map((m) => ({ path: m.site.path, rank: m.a.shape[0], ...(m.relativeError !== undefined ? { relative_error: m.relativeError } : {}) }));

/** The model folder `adapterDir` was trained on: `model`, else its base_model_name_or_path; refuses `outDir` = `adapterDir`. */
export function exportBaseModel(adapterDir: string, outDir: string, model?: string): string {
  if (!existsSync(join(adapterDir, ADAPTER_CONFIG)))
    throw new ConfigError(`${adapterDir} holds no ${ADAPTER_CONFIG}; pass an adapter folder (e.g. RUN_DIR/best)`);
  if (resolve(outDir) === resolve(adapterDir)) throw new ConfigError(`--out ${outDir} is the adapter folder; export to a new folder`);
  const raw = readJsonFile(join(adapterDir, ADAPTER_CONFIG), "adapter config") as Record<string, unknown>;
  const dir = model ?? (typeof raw.base_model_name_or_path === "string" ? raw.base_model_name_or_path : undefined);
  if (!dir || !existsSync(join(dir, "config.json"))) {
    throw new ConfigError(
      `the model folder ${dir ? `"${dir}" (from ${ADAPTER_CONFIG}) has no config.json` : "is unknown"}; pass --model DIR, the folder the adapter was trained on`,
    );
  }
  return dir;
}

/**
 * Export `adapterDir` (for `model`, default its base_model_name_or_path) to `outDir`; with
 * `uniformRank`, every module zero-padded to the largest rank so that every reader (llama.cpp's
 * converter too) applies the same update.
 */
export function exportAsLora(
  adapterDir: string,
  outDir: string,
  o: { model?: string; maxRank?: number; uniformRank?: boolean; overwrite?: boolean } = {},
): ExportResult {
  const model = exportBaseModel(adapterDir, outDir, o.model);
  const { set, head, ctx } = loadAdapterForConfig(adapterDir, model);
  const exact = loraModules(set, o.maxRank);
  const modules = o.uniformRank ? padToUniformRank(exact) : exact;
  takeOutFolder(outDir, o.overwrite);
  saveLoraFolder(outDir, modules, ctx, head);
  // a run's class names travel with its head
  if (existsSync(join(adapterDir, LABELS_FILE))) copyFileSync(join(adapterDir, LABELS_FILE), join(outDir, LABELS_FILE));
  const top = Math.max(...modules.map((m) => m.a.shape[0]));
  return { dir: outDir, modules: exportedModules(modules), readers: loraReaders(modules), vllm_max_lora_rank: vllmMaxLoraRank(top) ?? null };
}
