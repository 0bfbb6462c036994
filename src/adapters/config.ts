/**
 * An adapter's configuration, typed and validated once, and its plan on a model: the selected
 * linear sites in shape groups, each with its construction and ranks. Defaults follow the paper's
 * code (Tucker, orthogonal factors, zero core, scaling 1, q/k/v of every layer) and PEFT for LoRA
 * (kaiming-uniform A, zero B, scaling alpha/r or alpha/√r with rsLoRA).
 */
import { ConfigError } from "../errors.ts";
import { type Construction, DEFAULT_PROJECTIONS, parseConstruction } from "./constructions.ts";
import { GQA_MODES, type GqaMode, type GroupPlan, planGroups } from "./groups.ts";
import type { Factorization } from "./factorizations/index.ts";
import { methodOf } from "./methods.ts";
import type { HeadLayout } from "./reference.ts";
import type { LinearSite } from "../nn/sites.ts";
import { type TargetModules, selectSites } from "./targets.ts";

/** Larger updates overflow float32 in merged weights (a scaling of 1e308 makes every merged weight Inf). */
export const MAX_SCALING = 1e4;

export type InitMethod = "orthogonal" | "normal" | "kaiming_uniform";

/** A validated adapter configuration: what `adapter_config.json` holds and `planAdapter` returns. */
export interface AdapterConfig {
  /** The construction asked for; a group without heads may run its fallback (see groups.ts). */
  construction: Construction;
  /** The ranks asked for, in the construction's mode order (LoRA [r], CP [R]); groups hold theirs. */
  ranks: number[];
  factorization: Factorization;
  /** s: every update is multiplied by it. LoRA: alpha/r (alpha/√r with rsLoRA). */
  scaling: number;
  /** LoRA only: PEFT's lora_alpha and use_rslora, kept to write PEFT's config back. */
  loraAlpha?: number;
  useRslora?: boolean;
  /** Which column of an (in, dh, heads) slice a head owns; see reference.ts. */
  headLayout: HeadLayout;
  /** PEFT's target_modules: names, a whole-path regex, or "all-linear". */
  targetModules: TargetModules;
  /** PEFT's layers_to_transform. */
  layersToTransform?: number[];
  /** Grouped-query attention: K/V share Q's stack ("mean") or form their own group. */
  gqa: GqaMode;
  /** Factor initialisation (the core, or CP's first factor, starts at zero). */
  init: InitMethod;
}

/** A shape group with its ranks, numbered: group g's tensors are named with `g` (adapter-set.ts). */
export interface AdapterGroup extends GroupPlan {
  index: number;
  /** Per-mode ranks of `construction` (LoRA [r], CP [R]). */
  ranks: number[];
}

/** What a user asks for when creating an adapter; `planAdapter` checks it and fills the defaults. */
export interface AdapterOptions {
  construction: string;
  ranks: number | number[];
  /** Ranks of individual groups by name (e.g. solved for a budget, or read from a file). */
  groupRanks?: Record<string, number | number[]>;
  factorization?: Factorization;
  scaling?: number;
  loraAlpha?: number;
  useRslora?: boolean;
  headLayout?: HeadLayout;
  targetModules?: TargetModules;
  layersToTransform?: number[];
  gqa?: GqaMode;
  init?: InitMethod;
}

const INITS: InitMethod[] = ["orthogonal", "normal", "kaiming_uniform"];

function oneOf<T extends string>(what: string, plural: string, value: unknown, valid: readonly T[]): T {
  if (typeof value === "string" && (valid as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(`unknown ${what} ${JSON.stringify(value)}; valid ${plural}: ${valid.join(", ")}`);
}

function rankList(value: unknown, where: string): number | number[] {
  const ok = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  if (ok(value)) return value as number;
  // one rank in a list is one rank for every mode, as a number is
  if (Array.isArray(value) && value.length > 0 && value.every(ok)) return value.length === 1 ? (value[0] as number) : (value as number[]);
  throw new ConfigError(`${where} must be a positive integer or a list of them (one per mode), got ${JSON.stringify(value)}`);
}

/**
 * A group's ranks from the ranks asked for: unchanged where the group runs the construction asked
 * for; for a fallback without heads, the fallback method's mapping (LoRA: r = r_in).
 */
function groupRanks(plan: GroupPlan, asked: Construction, ranks: number | number[], f: Factorization): number | number[] {
  if (typeof ranks === "number" || plan.construction === asked) return ranks;
  return methodOf(plan.construction).ranksWithoutHeads(ranks, plan.shape.dOut, f);
}

/** Validate options against a model's linear sites: the config, its groups with ranks, and warnings. */
export function planAdapter(o: AdapterOptions, sites: LinearSite[]): { config: AdapterConfig; groups: AdapterGroup[]; warnings: string[] } {
  if (o === null || typeof o !== "object") throw new ConfigError(`adapter options must be an object, got ${JSON.stringify(o)}`);
  const construction = parseConstruction(o.construction);
  const method = methodOf(construction);
  const factorization = method.factorization(o.factorization);
  const headLayout = oneOf("head layout", "layouts", o.headLayout ?? "head_major", ["head_major", "interleaved"] as const);
  const init = oneOf("init", "inits", o.init ?? "orthogonal", INITS);
  const gqa = oneOf("GQA mode", "modes", o.gqa ?? "mean", GQA_MODES);
  const asked = rankList(o.ranks, "ranks");
  const rankNames = method.rankNames(factorization);
  // the list's length, checked before the groups exist (sizes do not matter)
  if (Array.isArray(asked)) method.checkRankList(asked, factorization);
  const targetModules = o.targetModules ?? [...DEFAULT_PROJECTIONS];
  const layersToTransform = o.layersToTransform;
  if (layersToTransform !== undefined && (!Array.isArray(layersToTransform) || layersToTransform.some((l) => !Number.isInteger(l)))) {
    throw new ConfigError(`layers_to_transform must be a list of block indices, got ${JSON.stringify(layersToTransform)}`);
  }
  const selected = selectSites(sites, { modules: targetModules, layers: layersToTransform });
  const plans = planGroups(selected, construction, gqa);
  const warnings: string[] = [];
  const groups = plans.map((plan, index): AdapterGroup => {
    const given = o.groupRanks?.[plan.name];
    const ranks = given !== undefined ? rankList(given, `ranks of group ${plan.name}`) : groupRanks(plan, construction, asked, factorization);
    const m = methodOf(plan.construction);
    const r = m.normalizeRanks(plan.shape, ranks, factorization);
    m.checkRankBounds(plan.shape, r.ranks, factorization);
    warnings.push(...r.warnings.map((w) => (plans.length > 1 ? `${plan.name}: ${w}` : w)));
    return { ...plan, index, ranks: r.ranks };
  });
  let scaling = o.scaling ?? 1;
  if (typeof scaling !== "number") throw new ConfigError(`scaling must be a number (e.g. 2 or 0.5), got the ${typeof scaling} ${JSON.stringify(scaling)}`);
  // PEFT's r: LoRA's scaling is alpha / r (rank_pattern modules keep that scaling, see format.ts)
  const r0 = typeof asked === "number" ? asked : asked[0];
  if (method.peftAlpha && o.loraAlpha !== undefined) scaling = o.useRslora ? o.loraAlpha / Math.sqrt(r0) : o.loraAlpha / r0;
  if (!(Math.abs(scaling) <= MAX_SCALING)) {
    const from = method.peftAlpha && o.loraAlpha !== undefined ? ` (lora_alpha ${o.loraAlpha} / ${o.useRslora ? `√r = √${r0}` : `r = ${r0}`})` : "";
    throw new ConfigError(`scaling must be a number in [-${MAX_SCALING}, ${MAX_SCALING}], got ${scaling}${from}; PEFT's alpha / r is rarely above 100`);
  }
  const config: AdapterConfig = {
    construction,
    ranks: typeof asked === "number" ? rankNames.map(() => asked) : [...asked],
    factorization,
    scaling,
    loraAlpha: method.peftAlpha ? (o.loraAlpha ?? scaling * r0) : undefined,
    useRslora: method.peftAlpha ? (o.useRslora ?? false) : undefined,
    headLayout,
    targetModules: typeof targetModules === "string" ? targetModules : [...targetModules],
    ...(layersToTransform ? { layersToTransform: [...layersToTransform] } : {}),
    gqa,
    init,
  };
  return { config, groups, warnings };
}
