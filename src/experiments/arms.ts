/**
 * What a comparison compares: parameter budgets, and arms (a construction with one value of each
 * varied setting: factorisation, head layout, learning rate, core learning-rate scale, how ranks
 * are chosen).
 * A setting only varies where it means something: the head layout for att constructions, the
 * factorisation and rank choice for tensor constructions, none for the head-only and full
 * fine-tuning baselines, which run once for every budget.
 */
import { CONSTRUCTIONS, CONSTRUCTION_SPECS, type Construction } from "../adapters/constructions.ts";
import { FACTORIZATIONS, type Factorization } from "../adapters/factorizations/index.ts";
import type { HeadLayout } from "../adapters/reference.ts";
import { ADAPTER_METHODS, REFERENCE_METHOD } from "../adapters/methods.ts";
import { ConfigError } from "../errors.ts";

export const BASELINES = ["head", "full"] as const;
export type Baseline = (typeof BASELINES)[number];
/** The methods `compare` runs when none are named: every construction and the baselines. */
export const DEFAULT_METHODS: string[] = [...CONSTRUCTIONS, ...BASELINES];
export const HEAD_LAYOUTS: readonly HeadLayout[] = ["head_major", "interleaved"];
export const RANK_MODES = ["solver", "auto"] as const;
/** How a comparison chooses ranks at a budget (one of `RANK_MODES`). */
export type RankMode = (typeof RANK_MODES)[number];

/** A parameter budget: that of LoRA at rank r on the adapted layers, or a count. */
export type Budget = { kind: "iso-lora"; rank: number } | { kind: "params"; count: number };

/** Short label, also the budget's folder name: "r8" or "p12000". */
export function budgetLabel(b: Budget): string {
  return b.kind === "iso-lora" ? `r${b.rank}` : `p${b.count}`;
}

/** Parse a comma-separated list of budgets (`--budgets 1,2,4`) as iso-LoRA ranks or parameter counts. */
export function parseBudgets(list: string, kind: Budget["kind"]): Budget[] {
  const parts = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const values = parts.map(Number);
  if (!parts.length || values.some((v) => !Number.isInteger(v) || v < 1)) {
    const flag = kind === "iso-lora" ? "--budgets takes LoRA ranks" : "--budget-params takes parameter counts";
    throw new ConfigError(`${flag}: positive integers separated by commas (e.g. 1,2,4,8,16), got "${list}"`);
  }
  return values.map((v) => (kind === "iso-lora" ? { kind, rank: v } : { kind, count: v }));
}

/** Learning rates as `--lrs` takes them: numbers in (0, 1] separated by commas ("3e-3,1e-3,1e-2"), none twice. */
export function parseLrs(list: string): number[] {
  const parts = list.split(",").map((s) => s.trim());
  return checkLrs(
    parts.map((p) => (p ? Number(p) : Number.NaN)),
    `"${list}"`,
  );
}

function checkLrs(lrs: number[], shown: string): number[] {
  if (!lrs.length || lrs.some((lr) => !(lr > 0 && lr <= 1)))
    throw new ConfigError(`--lrs takes learning rates in (0, 1] separated by commas (e.g. 3e-3,1e-3,1e-2), got ${shown}`);
  if (new Set(lrs).size !== lrs.length) throw new ConfigError(`--lrs lists a rate twice: ${shown}`);
  return lrs;
}

/** Seeds as a list and ranges: "0,1,2", "0-9", "0-4,7". */
export function parseSeeds(list: string): number[] {
  const bad = () => new ConfigError(`--seeds takes non-negative integers and ranges separated by commas (e.g. 0,1,2 or 0-9), got "${list}"`);
  const seeds: number[] = [];
  for (const part of list.split(",").map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw bad();
    const [from, to] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (to < from) throw bad();
    for (let s = from; s <= to; s++) seeds.push(s);
  }
  if (new Set(seeds).size !== seeds.length) throw new ConfigError(`--seeds lists a seed twice: "${list}"`);
  return seeds;
}

/** One method of a comparison with its settings: a row of the results table. */
export interface Arm {
  /** The table row and folder name: the construction, plus "+value" for each setting off its default. */
  name: string;
  method: Construction | Baseline;
  factorization: Factorization;
  headLayout: HeadLayout;
  coreLrScale: number;
  ranks: RankMode;
  /**
   * The adapters' and head's learning rate where it is not the comparison's (`--lr`): absent on
   * the default arm, so its settings, and so the finished runs a folder reuses, stay as they were.
   */
  lr?: number;
}

/** The values compared for each setting; the first value of each list is the default arm's. */
export interface ArmGrid {
  methods: string[];
  factorizations: Factorization[];
  headLayouts: HeadLayout[];
  coreLrScales: number[];
  rankModes: RankMode[];
  /** Learning rates, each an arm; the first is the comparison's own, `config.lr` (absent: only that one). */
  lrs?: number[];
}

export const isBaseline = (m: string): m is Baseline => (BASELINES as readonly string[]).includes(m);

/** The arm the others are paired against at a budget: LoRA at its default settings, the method budgets are counted in. */
export const REFERENCE_ARM: string = REFERENCE_METHOD;

function checkList<T>(values: readonly T[], valid: readonly T[] | null, flag: string): void {
  if (!values.length) throw new ConfigError(`${flag} needs at least one value`);
  const bad = valid ? values.filter((v) => !valid.includes(v)) : [];
  if (bad.length) throw new ConfigError(`${flag}: unknown ${bad.map((b) => `"${b}"`).join(", ")}; valid: ${valid!.join(", ")}`);
  if (new Set(values).size !== values.length) throw new ConfigError(`${flag} lists a value twice: ${values.join(", ")}`);
}

/**
 * The rank modes an arm runs: the spectrum reads Tucker's multilinear ranks, so other
 * factorisations take the solver's (refused when the solver is not asked for); LoRA's rank is the
 * budget's, so it runs once.
 */
function rankModesOf(spectrum: boolean, factorization: Factorization, modes: readonly RankMode[], fallback: RankMode): readonly RankMode[] {
  if (!spectrum) return [fallback];
  if (factorization === "tucker") return modes;
  if (!modes.includes("solver")) {
    throw new ConfigError(
      `--ranks auto reads Tucker's multilinear ranks from a spectrum, which factorization "${factorization}" does not have; use --factorization tucker, or add the solver (--rank-modes solver,auto)`,
    );
  }
  return ["solver"];
}

/** Every meaningful arm of the grid, grouped by method in the grid's order. */
export function expandArms(g: ArmGrid): Arm[] {
  checkList(g.methods, DEFAULT_METHODS, "--constructions");
  checkList(g.factorizations, Object.keys(FACTORIZATIONS), "--factorizations");
  checkList(g.headLayouts, HEAD_LAYOUTS, "--head-layouts");
  checkList(g.rankModes, RANK_MODES, "--ranks");
  checkList(g.coreLrScales, null, "--core-lr-scales");
  const badScale = g.coreLrScales.find((s) => !(Number.isFinite(s) && s > 0));
  if (badScale !== undefined) throw new ConfigError(`--core-lr-scale takes positive numbers, got ${badScale}`);
  if (g.lrs) checkLrs(g.lrs, g.lrs.join(", "));
  const lrs = g.lrs ?? [undefined];
  const defaults = { factorization: g.factorizations[0], headLayout: g.headLayouts[0], coreLrScale: g.coreLrScales[0], ranks: g.rankModes[0] };
  const arms: Arm[] = [];
  for (const method of g.methods as (Construction | Baseline)[]) {
    if (isBaseline(method)) {
      arms.push({ name: method, method, ...defaults });
      continue;
    }
    const m = ADAPTER_METHODS[method];
    for (const factorization of m.factorised ? g.factorizations : [defaults.factorization]) {
      for (const headLayout of CONSTRUCTION_SPECS[method].hasAtt ? g.headLayouts : [defaults.headLayout]) {
        for (const lr of lrs) {
          for (const coreLrScale of g.coreLrScales) {
            for (const ranks of rankModesOf(m.spectrumRanks, factorization, g.rankModes, defaults.ranks)) {
              const arm = { method, factorization, headLayout, coreLrScale, ranks, ...(lr === lrs[0] ? {} : { lr }) };
              arms.push({ name: armName(arm, defaults), ...arm });
            }
          }
        }
      }
    }
  }
  return arms;
}

function armName(a: Omit<Arm, "name">, d: Omit<Arm, "name" | "method">): string {
  const tags = [
    a.factorization !== d.factorization ? a.factorization : "",
    a.headLayout !== d.headLayout ? a.headLayout : "",
    a.lr !== undefined ? `lr-${a.lr}` : "",
    a.coreLrScale !== d.coreLrScale ? `core-lr-${a.coreLrScale}` : "",
    a.ranks !== d.ranks ? `${a.ranks}-ranks` : "",
  ];
  return [a.method, ...tags.filter(Boolean)].join("+");
}

/** The arm with every setting at its default: what a variant is paired against. */
export function defaultSibling(arm: Arm, arms: readonly Arm[]): Arm | undefined {
  return arms.find((a) => a.method === arm.method && a.name === a.method);
}
