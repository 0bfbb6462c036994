/**
 * The adapter folder: `adapter_config.json` + `adapter_model.safetensors` (adapter-files.ts has
 * the format), written atomically and read back with every key and shape checked.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { readJsonFile } from "../io/checkpoint.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import type { WeightMap } from "../nn/params.ts";
import type { AdapterSet } from "./adapter-set.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, type ModelContext, adapterFiles, adapterFromFiles } from "./adapter-files.ts";

export { ADAPTER_CONFIG, ADAPTER_WEIGHTS, HEAD_PREFIX, type ModelContext } from "./adapter-files.ts";

/**
 * The model folder as base_model_name_or_path records it: absolute when it is a folder here, so
 * the adapter finds its model from any working directory (a Hub id stays as it is).
 */
export function recordedBase(model: string | undefined): string | undefined {
  return model !== undefined && existsSync(join(model, "config.json")) ? resolve(model) : model;
}

/** Write the adapter (and the trained head, if any) atomically. */
export function saveAdapter(dir: string, set: AdapterSet, ctx: ModelContext, head?: WeightMap): void {
  mkdirSync(dir, { recursive: true });
  const files = adapterFiles(set, { ...ctx, baseModel: recordedBase(ctx.baseModel) }, head);
  writeFileAtomic(join(dir, ADAPTER_WEIGHTS), files.weights);
  writeFileAtomic(join(dir, ADAPTER_CONFIG), files.config);
}

/** Load an adapter folder for a model, checking every key and shape (all problems at once). */
export function loadAdapter(dir: string, ctx: ModelContext): { set: AdapterSet; head: WeightMap } {
  const config = join(dir, ADAPTER_CONFIG);
  const weights = join(dir, ADAPTER_WEIGHTS);
  return adapterFromFiles(readJsonFile(config, "adapter config"), readSafetensors(weights).tensors, { config, weights }, ctx);
}
