/** The library side of `tenslora export`: an adapter folder as a PEFT LoRA folder. */
import { copyFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { loraModules, saveLoraFolder } from "../adapters/export.ts";
import { ADAPTER_CONFIG } from "../adapters/format.ts";
import { ConfigError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { loadAdapterForConfig } from "../pipeline/adapter-for-config.ts";
import { LABELS_FILE } from "../train/artifacts.ts";

export interface ExportResult {
  dir: string;
  modules: { path: string; rank: number; relative_error?: number }[];
}

/** Export `adapterDir` (for `model`, default its base_model_name_or_path) to `outDir`. */
export function exportAsLora(adapterDir: string, outDir: string, o: { model?: string; maxRank?: number } = {}): ExportResult {
  if (!existsSync(join(adapterDir, ADAPTER_CONFIG)))
    throw new ConfigError(`${adapterDir} holds no ${ADAPTER_CONFIG}; pass an adapter folder (e.g. RUN_DIR/best)`);
  if (resolve(outDir) === resolve(adapterDir)) throw new ConfigError(`--out ${outDir} is the adapter folder; export to a new folder`);
  const raw = readJsonFile(join(adapterDir, ADAPTER_CONFIG), "adapter config") as Record<string, unknown>;
  const model = o.model ?? (typeof raw.base_model_name_or_path === "string" ? raw.base_model_name_or_path : undefined);
  if (!model || !existsSync(join(model, "config.json"))) {
    throw new ConfigError(
      `the model folder ${model ? `"${model}" (from ${ADAPTER_CONFIG}) has no config.json` : "is unknown"}; pass --model DIR, the folder the adapter was trained on`,
    );
  }
  const { set, head, ctx } = loadAdapterForConfig(adapterDir, model);
  const modules = loraModules(set, o.maxRank);
  saveLoraFolder(outDir, modules, ctx, head);
  // a run's class names travel with its head
  if (existsSync(join(adapterDir, LABELS_FILE))) copyFileSync(join(adapterDir, LABELS_FILE), join(outDir, LABELS_FILE));
  return {
    dir: outDir,
    modules: modules.map((m) => ({ path: m.site.path, rank: m.a.shape[0], ...(m.relativeError !== undefined ? { relative_error: m.relativeError } : {}) })),
  };
}
