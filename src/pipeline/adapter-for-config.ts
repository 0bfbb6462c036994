import { join } from "node:path";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { ADAPTER_WEIGHTS, HEAD_PREFIX, type ModelContext, loadAdapter } from "../adapters/format.ts";
import { readSafetensors } from "../io/safetensors.ts";
import type { WeightMap } from "../nn/params.ts";
import { modelContext } from "./context.ts";
import { readModelConfig } from "../models/load.ts";

/**
 * An adapter folder read against a model folder's config.json alone (no weights): for commands
 * that only need the adapter's own tensors (analyze, export). A head saved with the adapter may be
 * for another number of labels than config.json: its stored shape is accepted.
 */
export function loadAdapterForConfig(adapterDir: string, modelDir: string): { set: AdapterSet; head: WeightMap; ctx: ModelContext } {
  const { family, raw } = readModelConfig(modelDir);
  const config = family.parseConfig(raw, join(modelDir, "config.json"));
  const ctx = modelContext({ family, config, weights: new Map(), dir: modelDir, rawConfig: raw, newHead: false });
  for (const [k, e] of readSafetensors(join(adapterDir, ADAPTER_WEIGHTS)).tensors) {
    const name = k.startsWith(HEAD_PREFIX) ? k.slice(HEAD_PREFIX.length) : "";
    if (ctx.headShapes.has(name)) ctx.headShapes.set(name, e.shape);
  }
  return { ...loadAdapter(adapterDir, ctx), ctx };
}
