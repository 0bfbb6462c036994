/**
 * The two files of an adapter as bytes: `adapter_config.json` + `adapter_model.safetensors`. LoRA uses PEFT's
 * fields and key names so PEFT loads ours and we load PEFT's; TensLoRA uses the same two files
 * with `peft_type: "TENSLORA"` and tensors `tenslora.<t>.core`, `tenslora.<t>.factors.<i>`
 * (mode i in mode order; shape group g ≥ 1: `tenslora.g<g>.<t>.…`), its groups listed under
 * "groups" with their constructions and ranks. A trained head is saved under `base_model.model.<key>`, as PEFT's
 * `modules_to_save` does. No file system here: format.ts reads and writes the folder, the
 * browser build downloads and uploads the files.
 */
import { FormatError, ShapeError } from "../errors.ts";
import { toFloat32 } from "../io/dtype-convert.ts";
import { type SafetensorsFile, float32Inputs, serializeSafetensors } from "../io/safetensors-bytes.ts";
import type { WeightMap } from "../nn/params.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import { type AdapterSet, adapterParameterShapes } from "./adapter-set.ts";
import { RE2JS } from "re2js";
import { type AdapterConfig, type AdapterGroup, type AdapterOptions, planAdapter } from "./config.ts";
import { methodOf } from "./methods.ts";
import type { LinearSite } from "../nn/sites.ts";

/** File name of an adapter folder's configuration (PEFT's name, so PEFT tools find it). */
export const ADAPTER_CONFIG = "adapter_config.json";
/** File name of an adapter folder's weights (PEFT's name). */
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
export const HEAD_PREFIX = "base_model.model.";

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
    layers_to_transform: c.layersToTransform ?? null,
    modules_to_save: head?.size ? moduleNames([...head.keys()]) : null,
    task_type: ctx.taskType ?? null,
  };
  return { ...methodOf(c.construction).configJson(c, set.groups, ctx), ...common };
}

/** The adapter (and the trained head, if any) as the bytes of its two files. */
export function adapterFiles(set: AdapterSet, ctx: ModelContext, head?: WeightMap): { config: Uint8Array; weights: Uint8Array } {
  const tensors = new Map([...float32Inputs(set.tensors), ...float32Inputs(head ?? [], HEAD_PREFIX)]);
  return {
    config: new TextEncoder().encode(JSON.stringify(adapterConfigJson(set, ctx, head), null, 2) + "\n"),
    weights: serializeSafetensors(tensors, { format: "pt" }),
  };
}

function targetsOf(raw: Record<string, unknown>, path: string) {
  const t = raw.target_modules;
  if (typeof t === "string" || (Array.isArray(t) && t.every((x) => typeof x === "string"))) return t as string | string[];
  throw new FormatError(`${path}: "target_modules" must be a list of module names or a regex string, found ${JSON.stringify(t)}`);
}

function layersOf(raw: Record<string, unknown>, path: string): number[] | undefined {
  const l = raw.layers_to_transform;
  if (l === undefined || l === null) return undefined;
  if (typeof l === "number") return [l];
  if (Array.isArray(l) && l.every((x) => Number.isInteger(x))) return l as number[];
  throw new FormatError(`${path}: "layers_to_transform" must be a block index or a list of them, found ${JSON.stringify(l)}`);
}

/** Per-group ranks saved under "groups". */
function groupRanksOf(raw: Record<string, unknown>, path: string): Record<string, number[]> | undefined {
  if (raw.groups === undefined) return undefined;
  if (!Array.isArray(raw.groups) || raw.groups.some((g) => typeof g?.name !== "string" || !Array.isArray(g?.ranks))) {
    throw new FormatError(`${path}: "groups" must be a list of {name, ranks, …}, found ${JSON.stringify(raw.groups)}`);
  }
  return Object.fromEntries(raw.groups.map((g: { name: string; ranks: number[] }) => [g.name, g.ranks]));
}

/** PEFT's rank_pattern / alpha_pattern keys: regexes matched against the end of a module path. */
function patternValue(pattern: Record<string, unknown>, site: LinearSite, path: string, field: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    let re: RE2JS;
    try {
      re = RE2JS.compile(`(?:.*\\.)?(?:${key})`);
    } catch {
      throw new FormatError(`${path}: ${field} key "${key}" is not a valid regular expression`);
    }
    if (!re.matches(site.path)) continue;
    if (typeof value !== "number") throw new FormatError(`${path}: ${field}["${key}"] must be a number, found ${JSON.stringify(value)}`);
    return value;
  }
  return undefined;
}

/**
 * Per-group LoRA ranks from PEFT's rank_pattern; one scaling for all modules (alpha_pattern must
 * keep alpha / r, or alpha / √r with rsLoRA, equal to the file's default).
 */
function loraRankPattern(cfg: Record<string, unknown>, path: string, groups: AdapterGroup[], config: AdapterConfig): Record<string, number[]> | undefined {
  const object = (field: string) => {
    const v = cfg[field];
    if (v === undefined || v === null) return {};
    if (typeof v !== "object" || Array.isArray(v))
      throw new FormatError(`${path}: "${field}" must be an object of module pattern → number, found ${JSON.stringify(v)}`);
    return v as Record<string, unknown>;
  };
  const ranks = object("rank_pattern");
  const alphas = object("alpha_pattern");
  if (Object.keys(ranks).length === 0 && Object.keys(alphas).length === 0) return undefined;
  const out: Record<string, number[]> = {};
  for (const g of groups) {
    const per = g.grid.flat().map((site) => {
      const r = patternValue(ranks, site, path, "rank_pattern") ?? config.ranks[0];
      const alpha = patternValue(alphas, site, path, "alpha_pattern") ?? config.loraAlpha!;
      const s = config.useRslora ? alpha / Math.sqrt(r) : alpha / r;
      if (Math.abs(s - config.scaling) > 1e-6 * Math.abs(config.scaling)) {
        throw new FormatError(
          `${path}: ${site.path} has scaling ${s} (alpha ${alpha}, r ${r}) but the adapter's is ${config.scaling}; modules with their own scaling are not supported`,
        );
      }
      return r;
    });
    if (per.some((r) => r !== per[0])) {
      throw new FormatError(
        `${path}: rank_pattern gives the ${g.name} layers of one shape different ranks (${[...new Set(per)].join(", ")}); give them one rank`,
      );
    }
    out[g.name] = [per[0]];
  }
  return out;
}

function parseConfig(raw: unknown, path: string, ctx: ModelContext) {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new FormatError(`${path}: must hold a JSON object, found ${JSON.stringify(raw)}`);
  const cfg = raw as Record<string, unknown>;
  const peft = cfg.peft_type;
  const targets = { targetModules: targetsOf(cfg, path), layersToTransform: layersOf(cfg, path) };
  if (peft === "LORA") {
    if (typeof cfg.r !== "number") throw new FormatError(`${path}: "r" must be a number, found ${JSON.stringify(cfg.r)}`);
    const base = { construction: "lora", ranks: cfg.r, loraAlpha: (cfg.lora_alpha as number) ?? cfg.r, useRslora: Boolean(cfg.use_rslora), ...targets };
    const plain = planAdapter(base, ctx.sites);
    const groupRanks = loraRankPattern(cfg, path, plain.groups, plain.config);
    return groupRanks ? planAdapter({ ...base, groupRanks }, ctx.sites) : plain;
  }
  if (peft === "TENSLORA") {
    const stored = { num_layers: cfg.num_layers, num_heads: cfg.num_heads, hidden_size: cfg.hidden_size };
    const model = { num_layers: ctx.layers, num_heads: ctx.heads, hidden_size: ctx.hidden };
    for (const k of Object.keys(model) as (keyof typeof model)[]) {
      if (stored[k] !== undefined && stored[k] !== model[k]) {
        throw new ShapeError(`${path}: the adapter was made for ${k} = ${stored[k]} but the model has ${model[k]}; use the model it was trained on`);
      }
    }
    const opts: AdapterOptions = {
      construction: String(cfg.construction),
      ranks: cfg.ranks as number[],
      groupRanks: groupRanksOf(cfg, path),
      factorization: cfg.factorization as AdapterConfig["factorization"],
      scaling: cfg.scaling as number,
      headLayout: cfg.head_layout as AdapterConfig["headLayout"],
      init: (cfg.init as AdapterConfig["init"]) ?? "orthogonal",
      gqa: (cfg.gqa as AdapterConfig["gqa"]) ?? "mean",
      ...targets,
    };
    return planAdapter(opts, ctx.sites);
  }
  throw new FormatError(`${path}: peft_type ${JSON.stringify(peft)} is not supported; expected "LORA" or "TENSLORA"`);
}

/**
 * An adapter for a model from its parsed files (`raw` = adapter_config.json's value), checking
 * every key and shape (all problems at once); `names` are the files' paths for the errors.
 */
export function adapterFromFiles(
  raw: unknown,
  stored: SafetensorsFile["tensors"],
  names: { config: string; weights: string },
  ctx: ModelContext,
): { set: AdapterSet; head: WeightMap } {
  const { config, groups } = parseConfig(raw, names.config, ctx);
  const file = names.weights;
  const expected = adapterParameterShapes(config, groups);
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
  // an adapter is refused whole, before anything merges, exports or shows it
  for (const [key, t] of [...tensors, ...head]) {
    const bad = describeNonFinite(t.data);
    if (bad) problems.push(`"${key}" holds ${bad}`);
  }
  if (problems.length) {
    const onlyNonFinite = problems.every((p) => p.includes("non-finite"));
    const what = onlyNonFinite
      ? "holds non-finite values"
      : `does not fit this model and ${config.construction} ranks ${groups.map((g) => `[${g.ranks}]`).join(" ")}`;
    throw new ShapeError(
      `${file} ${what}:\n  ${problems.slice(0, 20).join("\n  ")}` +
        (problems.length > 20 ? `\n  … and ${problems.length - 20} more` : "") +
        (problems.some((p) => p.includes("non-finite"))
          ? "\nThe run diverged or the file is damaged: use another checkpoint (e.g. best/) or retrain."
          : "\nCheck that the adapter was trained on this model with this configuration."),
    );
  }
  return { set: { config, groups, tensors }, head };
}
