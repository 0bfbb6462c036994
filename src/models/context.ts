/** The facts about a loaded model that adapter files and budgets need. */
import { join } from "node:path";
import { type AdapterSet, createAdapterSet } from "../adapters/adapter-set.ts";
import { type AdapterOptions, planAdapter } from "../adapters/config.ts";
import { DEFAULT_PROJECTIONS } from "../adapters/constructions.ts";
import { ADAPTER_WEIGHTS, HEAD_PREFIX, type ModelContext, loadAdapter } from "../adapters/format.ts";
import { readSafetensors } from "../io/safetensors.ts";
import type { WeightMap } from "../nn/params.ts";
import { taskOf } from "../tasks/index.ts";
import { type LoadedModel, readModelConfig } from "./load.ts";

export function modelContext(model: LoadedModel): ModelContext {
  const shape = model.family.shape(model.config);
  const all = model.family.parameterShapes(model.config);
  return {
    sites: model.family.linearSites(model.config),
    heads: shape.heads,
    layers: shape.layers,
    hidden: shape.hidden,
    headShapes: new Map(model.family.headParameters(model.config).map((k) => [k, all.get(k)!])),
    baseModel: model.dir,
    taskType: taskOf(model.family.task).peftTaskType,
  };
}

/** The linear layers an adapter of this model targets unless told otherwise (q, k, v by their names). */
export function defaultTargets(model: LoadedModel): string[] {
  return [...(model.family.adapterTargets ?? DEFAULT_PROJECTIONS)];
}

/** A fresh adapter for a model: ranks validated against its shape, zero update at step 0. */
export function createAdapter(model: LoadedModel, opts: AdapterOptions & { seed?: number }): { set: AdapterSet; warnings: string[] } {
  const { config, groups, warnings } = planAdapter(
    { ...opts, targetModules: opts.targetModules ?? defaultTargets(model) },
    model.family.linearSites(model.config),
  );
  return { set: createAdapterSet(config, groups, opts.seed ?? 0), warnings };
}

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
