/** The facts about a loaded model that adapter files and budgets need. */
import { type AdapterSet, createAdapterSet } from "../adapters/adapter-set.ts";
import { type AdapterOptions, planAdapter } from "../adapters/config.ts";
import { DEFAULT_PROJECTIONS } from "../adapters/constructions.ts";
import type { ModelContext } from "../adapters/adapter-files.ts";
import { taskOf } from "../tasks/index.ts";
import type { LoadedModel } from "../models/assemble.ts";

/** The facts about a model an adapter file records and checks (family, shape, heads), so it loads only onto a matching model. */
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
