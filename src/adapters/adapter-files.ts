/**
 * The two files of an adapter as bytes: `adapter_config.json` + `adapter_model.safetensors`.
 * LoRA uses PEFT's fields and key names so PEFT loads ours and we load PEFT's; TensLoRA uses the
 * same two files with `peft_type: "TENSLORA"` and tensors `tenslora.<t>.core`,
 * `tenslora.<t>.factors.<i>` (mode i in mode order). A trained head is saved under
 * `base_model.model.<key>`, as PEFT's `modules_to_save` does. No file system here: format.ts
 * reads and writes the folder, the browser build downloads and uploads the files.
 */
import { FormatError, ShapeError } from "../errors.ts";
import { toFloat32 } from "../io/dtype-convert.ts";
import { type SafetensorsFile, float32Inputs, serializeSafetensors } from "../io/safetensors-bytes.ts";
import type { LinearSite } from "../models/types.ts";
import type { WeightMap } from "../nn/params.ts";
import { type AdapterSet, adapterParameterShapes, adapterShape } from "./adapter-set.ts";
import { type AdapterConfig, resolveAdapterConfig } from "./config.ts";
import { CONSTRUCTION_SPECS, modeNames, modeSizes } from "./constructions.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
const HEAD_PREFIX = "base_model.model.";

export interface ModelContext {
  sites: LinearSite[];
  heads: number;
  layers: number;
  hidden: number;
  /** Expected head parameter shapes (saved/loaded as modules_to_save). */
  headShapes: Map<string, number[]>;
  baseModel?: string;
  taskType?: string;
}

function moduleNames(headKeys: string[]): string[] {
  return [...new Set(headKeys.map((k) => k.replace(/\.(weight|bias)$/, "").split(".")[0]))];
}

export function adapterConfigJson(set: AdapterSet, ctx: ModelContext, head: WeightMap | undefined): Record<string, unknown> {
  const c = set.config;
  const common = {
    base_model_name_or_path: ctx.baseModel ?? null,
    target_modules: c.targetModules,
    modules_to_save: head && head.size ? moduleNames([...head.keys()]) : null,
    task_type: ctx.taskType ?? null,
  };
  if (CONSTRUCTION_SPECS[c.construction].kind === "lora") {
    return {
      peft_type: "LORA",
      r: c.ranks[0],
      lora_alpha: c.loraAlpha,
      use_rslora: c.useRslora ?? false,
      lora_dropout: 0,
      bias: "none",
      fan_in_fan_out: false,
      init_lora_weights: true,
      inference_mode: true,
      ...common,
    };
  }
  return {
    peft_type: "TENSLORA",
    construction: c.construction,
    factorization: c.factorization,
    ranks: c.ranks,
    mode_names: modeNames(c.construction),
    mode_sizes: modeSizes(c.construction, set.shape),
    scaling: c.scaling,
    head_layout: c.headLayout,
    init: c.init,
    num_layers: set.shape.layers,
    hidden_size: ctx.hidden,
    num_heads: set.shape.heads,
    ...common,
  };
}

/** The adapter (and the trained head, if any) as the bytes of its two files. */
export function adapterFiles(set: AdapterSet, ctx: ModelContext, head?: WeightMap): { config: Uint8Array; weights: Uint8Array } {
  const tensors = new Map([...float32Inputs(set.tensors), ...float32Inputs(head ?? [], HEAD_PREFIX)]);
  return {
    config: new TextEncoder().encode(JSON.stringify(adapterConfigJson(set, ctx, head), null, 2) + "\n"),
    weights: serializeSafetensors(tensors, { format: "pt" }),
  };
}

function parseConfig(raw: Record<string, unknown>, path: string, ctx: ModelContext) {
  const peft = raw.peft_type;
  const targetsRaw = raw.target_modules;
  const targets = typeof targetsRaw === "string" ? [`/${targetsRaw}/`] : (targetsRaw as string[] | undefined);
  if (!Array.isArray(targets) || targets.some((t) => typeof t !== "string")) {
    throw new FormatError(`${path}: "target_modules" must be a list of module names, found ${JSON.stringify(targetsRaw)}`);
  }
  const { shape, grid } = adapterShape(ctx.sites, targets, ctx.heads, ctx.layers);
  if (peft === "LORA") {
    if (typeof raw.r !== "number") throw new FormatError(`${path}: "r" must be a number, found ${JSON.stringify(raw.r)}`);
    const { config } = resolveAdapterConfig(
      { construction: "lora", ranks: raw.r, loraAlpha: (raw.lora_alpha as number) ?? raw.r, useRslora: Boolean(raw.use_rslora), targetModules: targets },
      shape,
    );
    return { config, shape, grid };
  }
  if (peft === "TENSLORA") {
    const { config } = resolveAdapterConfig(
      {
        construction: String(raw.construction),
        ranks: raw.ranks as number[],
        factorization: raw.factorization as AdapterConfig["factorization"],
        scaling: raw.scaling as number,
        headLayout: raw.head_layout as AdapterConfig["headLayout"],
        init: (raw.init as AdapterConfig["init"]) ?? "orthogonal",
        targetModules: targets,
      },
      shape,
    );
    const stored = { num_layers: raw.num_layers, num_heads: raw.num_heads, hidden_size: raw.hidden_size };
    const model = { num_layers: ctx.layers, num_heads: ctx.heads, hidden_size: ctx.hidden };
    for (const k of Object.keys(model) as (keyof typeof model)[]) {
      if (stored[k] !== undefined && stored[k] !== model[k]) {
        throw new ShapeError(`${path}: the adapter was made for ${k} = ${stored[k]} but the model has ${model[k]}; use the model it was trained on`);
      }
    }
    return { config, shape, grid };
  }
  throw new FormatError(`${path}: peft_type ${JSON.stringify(peft)} is not supported; expected "LORA" or "TENSLORA"`);
}

/**
 * An adapter for a model from its parsed files (`raw` = adapter_config.json's value), checking
 * every key and shape (all problems at once); `names` are the files' paths for the errors.
 */
export function adapterFromFiles(
  raw: Record<string, unknown>,
  stored: SafetensorsFile["tensors"],
  names: { config: string; weights: string },
  ctx: ModelContext,
): { set: AdapterSet; head: WeightMap } {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new FormatError(`${names.config} must hold a JSON object, found ${JSON.stringify(raw)}`);
  const { config, shape, grid } = parseConfig(raw, names.config, ctx);
  const file = names.weights;
  const expected = adapterParameterShapes(config, shape, grid);
  const problems: string[] = [];
  const tensors: WeightMap = new Map();
  const head: WeightMap = new Map();
  for (const [key, want] of expected) {
    const e = stored.get(key);
    if (!e) problems.push(`missing "${key}" (expected [${want}])`);
    else if (e.shape.join() !== want.join()) problems.push(`"${key}": expected shape [${want}], found [${e.shape}]`);
    else tensors.set(key, { shape: want, data: toFloat32(e, key) });
  }
  for (const [key, e] of stored) {
    if (expected.has(key)) continue;
    const name = key.startsWith(HEAD_PREFIX) ? key.slice(HEAD_PREFIX.length) : undefined;
    const want = name ? ctx.headShapes.get(name) : undefined;
    if (!want) problems.push(`unexpected "${key}" [${e.shape}]`);
    else if (e.shape.join() !== want.join()) problems.push(`"${key}": expected shape [${want}], found [${e.shape}] (a head for another number of labels?)`);
    else head.set(name!, { shape: want, data: toFloat32(e, key) });
  }
  if (problems.length) {
    throw new ShapeError(
      `${file} does not fit this model and ${config.construction} ranks [${config.ranks}]:\n  ${problems.slice(0, 20).join("\n  ")}` +
        (problems.length > 20 ? `\n  … and ${problems.length - 20} more` : "") +
        `\nCheck that the adapter was trained on this model with this configuration.`,
    );
  }
  return { set: { config, shape, grid, tensors }, head };
}
