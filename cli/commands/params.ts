/**
 * `tenslora params`: trainable parameters of LoRA and the TensLoRA constructions on a model
 * shape, for given ranks, or the ranks a parameter budget buys.
 *
 *   tenslora params --model vit-base --construction qkv_depth --ranks 8,8,3,12 --json
 *   tenslora params --model ./vit/config.json --iso-lora 8        # table: every construction at LoRA r=8's budget
 */
import type { Command } from "commander";
import {
  CONSTRUCTIONS,
  ConfigError,
  type Construction,
  DEFAULT_RANK_SLACK,
  type Factorization,
  type LinearSite,
  groupRanksForBudget,
  loraPerRank,
  modeNames,
  modeSizes,
  modelShapeFor,
  modelSitesFor,
  methodOf,
  modelDefaultTargets,
  paramCount,
  parseTargetModules,
  PRESETS,
  parseConstruction,
  parseFactorization,
  parsePreset,
  planAdapter,
  presetOptions,
  parseRanks,
} from "../../src/index.ts";

/** The command's flags as commander parses them (all strings, as typed). */
export interface ParamsOptions {
  model: string;
  construction?: string;
  ranks?: string;
  budget?: string;
  isoLora?: string;
  /** Budget solving: the most balanced ranks within this fraction below the best fit. */
  rankSlack?: string;
  /** Default "tucker". */
  factorization?: string;
  /** Default query,key,value; "all-linear", "/regex/" or names. */
  targetModules?: string;
  /** A published method (lorta, lotr, fact_tk, fact_tt) instead of --construction. */
  preset?: string;
  json?: boolean;
}

/** One shape group's answer. */
export interface GroupRow {
  name: string;
  construction: Construction;
  /** Set when the group runs a construction without heads: why. */
  fallback?: string;
  /** The tensor's modes (LoRA: in, out) and their sizes. */
  mode_names: string[];
  mode_sizes: number[];
  /** What each rank entry ranks: the modes (Tucker), "R" (CP), the bonds (TT), "r" (LoRA). */
  rank_names: string[];
  ranks: number[];
  params: number;
  lora_equivalent_rank: number;
  budget?: number;
}

/** One construction's answer: the totals, the first group's ranks, and every group. */
export interface ParamsRow {
  construction: Construction;
  factorization: Factorization;
  mode_names: string[];
  ranks: number[];
  params: number;
  lora_equivalent_rank: number;
  /** Set when the ranks were solved for a budget. */
  budget?: number;
  groups: GroupRow[];
}

function parseCount(flag: string, text: string, integer: boolean): number {
  const v = Number(text.replaceAll("_", ""));
  if (text.trim() === "" || !Number.isFinite(v) || v < 1 || (integer && !Number.isInteger(v))) {
    throw new ConfigError(`${flag} must be ${integer ? "an integer" : "a number"} ≥ 1, got "${text}"`);
  }
  return v;
}

/** What the flags ask for: fixed ranks, or a budget to solve for. */
type Request = { ranks: number[] } | { budget: { total: number } | { isoLora: number }; slack: number };

function request(o: ParamsOptions): Request {
  const given = (["ranks", "budget", "isoLora"] as const).filter((k) => o[k] !== undefined);
  if (given.length > 1) {
    throw new ConfigError(`give one of --ranks, --budget or --iso-lora, not ${given.map((k) => (k === "isoLora" ? "--iso-lora" : `--${k}`)).join(" and ")}`);
  }
  const slack = Number(o.rankSlack ?? DEFAULT_RANK_SLACK);
  if (!(slack >= 0 && slack < 1)) throw new ConfigError(`--rank-slack must be a fraction in [0, 1), got ${o.rankSlack}`);
  if (o.budget !== undefined) return { budget: { total: parseCount("--budget", o.budget, false) }, slack };
  if (o.isoLora !== undefined) return { budget: { isoLora: parseCount("--iso-lora", o.isoLora, true) }, slack };
  return { ranks: parseRanks(o.ranks ?? "8") };
}

/** What is counted: a construction with its factorisation and targets, or a preset. */
type Method = { construction: Construction; factorization: Factorization; targetModules?: string } | { preset: string };

/** The row for one method; `warnings` collects legal-but-wasteful rank findings. */
export function paramsRow(method: Method, sites: LinearSite[], req: Request, warnings: string[] = []): ParamsRow {
  const base =
    "preset" in method
      ? parsePreset(method.preset).options(sites)
      : {
          construction: method.construction,
          factorization: methodOf(method.construction).factorization(method.factorization),
          ...(method.targetModules !== undefined ? { targetModules: parseTargetModules(method.targetModules) } : {}),
        };
  const construction = base.construction as Construction;
  const f: Factorization = base.factorization ?? "tucker";
  let budgets: Record<string, number> = {};
  let plan: ReturnType<typeof planAdapter>;
  if ("budget" in req) {
    const solved = groupRanksForBudget(base, sites, req.budget, { slack: req.slack });
    budgets = Object.fromEntries(solved.groups.map((g) => [g.name, g.budget]));
    plan = planAdapter({ ...base, ranks: 1, groupRanks: solved.groupRanks }, sites);
  } else {
    if ("preset" in method && req.ranks.length > 1)
      throw new ConfigError(`--preset takes one rank (the preset fixes the rest), got --ranks ${req.ranks.join(",")}`);
    plan = planAdapter(
      "preset" in method ? presetOptions(method.preset, sites, req.ranks[0]) : { ...base, ranks: req.ranks.length === 1 ? req.ranks[0] : req.ranks },
      sites,
    );
    warnings.push(...plan.warnings);
  }
  const groups = plan.groups.map((g): GroupRow => {
    const m = methodOf(g.construction);
    const gf = m.factorization(f);
    const params = paramCount(g.construction, g.shape, g.ranks, gf);
    return {
      name: g.name,
      construction: g.construction,
      ...(g.fallback ? { fallback: g.fallback } : {}),
      mode_names: modeNames(g.construction),
      rank_names: m.rankNames(gf),
      mode_sizes: modeSizes(g.construction, g.shape),
      ranks: g.ranks,
      params,
      lora_equivalent_rank: params / loraPerRank(g),
      ...(g.name in budgets ? { budget: budgets[g.name] } : {}),
    };
  });
  const params = groups.reduce((n, g) => n + g.params, 0);
  const perRank = plan.groups.reduce((n, g) => n + loraPerRank(g), 0);
  return {
    construction,
    factorization: f,
    mode_names: groups[0].rank_names,
    ranks: groups[0].ranks,
    params,
    lora_equivalent_rank: params / perRank,
    ...("budget" in req ? { budget: "total" in req.budget ? req.budget.total : req.budget.isoLora * perRank } : {}),
    groups,
  };
}

const ranksText = (r: { ranks: number[]; rank_names?: string[]; mode_names: string[] }) =>
  r.ranks.map((v, i) => `${(r.rank_names ?? r.mode_names)[i]}=${v}`).join(" ");

function table(rows: ParamsRow[]): string {
  const head = ["construction", "ranks", "params", "LoRA-eq. rank"];
  const cells = rows.map((r) => [
    r.construction,
    r.groups.length > 1 ? `${r.groups.length} groups` : ranksText(r),
    r.params.toLocaleString("en-US"),
    r.lora_equivalent_rank.toFixed(3),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i >= 2 ? v.padStart(width[i]) : v.padEnd(width[i]))).join("  ");
  return [line(head), ...cells.map(line)].join("\n");
}

/** What `tenslora params` prints: JSON (one row, or the table's rows), text, and warnings for stderr. */
export function paramsReport(o: ParamsOptions): { json: ParamsRow | ParamsRow[]; text: string; warnings: string[] } {
  const shape = modelShapeFor(o.model);
  const sites = modelSitesFor(o.model);
  // a preset names its own targets
  if (o.preset === undefined) o = { ...o, targetModules: o.targetModules ?? modelDefaultTargets(o.model).join(",") };
  const factorization = parseFactorization(o.factorization ?? "tucker");
  const req = request(o);
  const about = `${o.model} (d ${shape.dIn}, ${shape.heads} heads, ${shape.layers} layers, targets ${o.targetModules ?? shape.projections.join(",")})`;
  if (o.construction === undefined && o.preset === undefined) {
    if ("ranks" in req && req.ranks.length > 1) {
      throw new ConfigError(
        `--ranks with ${req.ranks.length} values needs --construction (constructions have 1 to 5 modes); give one rank for the table of all eight`,
      );
    }
    const rows = CONSTRUCTIONS.map((c) => paramsRow({ construction: c, factorization, targetModules: o.targetModules }, sites, req));
    const what =
      "budget" in req
        ? "total" in req.budget
          ? `budget ${req.budget.total.toLocaleString("en-US")} parameters`
          : `LoRA r=${req.budget.isoLora}'s budget`
        : `rank ${req.ranks[0]} on every mode`;
    return { json: rows, text: `${about}, ${what}, ${factorization}:\n${table(rows)}`, warnings: [] };
  }
  const warnings: string[] = [];
  let method: Method;
  if (o.preset !== undefined) {
    if (o.construction !== undefined || o.targetModules !== undefined || o.factorization !== undefined) {
      throw new ConfigError(
        `--preset ${o.preset} fixes the construction, factorization and targets; drop --construction, --factorization and --target-modules`,
      );
    }
    method = { preset: o.preset };
  } else {
    method = { construction: parseConstruction(o.construction!), factorization, targetModules: o.targetModules };
  }
  const row = paramsRow(method, sites, req, warnings);
  const budget = row.budget !== undefined ? ` (largest under a budget of ${row.budget.toLocaleString("en-US")})` : "";
  const groupLines = row.groups.map(
    (g) =>
      `  group ${g.name}: ${g.construction}${g.fallback ? ` (fallback: ${g.fallback})` : ""}, modes ${g.mode_names.map((n, i) => `${n} ${g.mode_sizes[i]}`).join(", ")}\n` +
      `    ranks ${ranksText(g)}, parameters ${g.params.toLocaleString("en-US")} (LoRA-equivalent rank ${g.lora_equivalent_rank.toFixed(3)})`,
  );
  const text =
    `${o.preset ? `preset ${o.preset}: ` : ""}${row.construction} (${row.factorization}) on ${about}${budget}\n${groupLines.join("\n")}\n` +
    `  total parameters ${row.params.toLocaleString("en-US")} (LoRA-equivalent rank ${row.lora_equivalent_rank.toFixed(3)})`;
  return { json: row, text, warnings };
}

export function register(program: Command): void {
  program
    .command("params")
    .description("count the trainable parameters of LoRA / TensLoRA adapters, or solve ranks for a budget")
    .requiredOption("--model <name|config.json>", "a preset (vit-base, vit-large, vit-huge, roberta-base, roberta-large) or a HuggingFace config.json")
    .option("--construction <name>", `one of ${CONSTRUCTIONS.join(", ")}; without it, a table of all eight`)
    .option("--ranks <list>", "one rank for every mode, or one per mode (e.g. 8,8,3,12); default 8")
    .option("--budget <n>", "solve the ranks: the largest parameter count not above n")
    .option("--iso-lora <r>", "solve the ranks for the budget of LoRA with rank r")
    .option(
      "--rank-slack <fraction>",
      "with a budget: the most balanced ranks within this fraction below the best fit (0 = strict; default 0.01, as train and compare)",
    )
    .option("--factorization <name>", "tucker, cp or tt (tensor-train); default tucker")
    .option("--preset <name>", `a published method instead of --construction: ${Object.keys(PRESETS).join(", ")}`)
    .option("--target-modules <list>", 'adapted linear layers: names, "all-linear" or /regex/ (default: q, k, v by the model\'s names)')
    .option("--json", "print JSON")
    .action((o: ParamsOptions) => {
      const { json, text, warnings } = paramsReport(o);
      for (const w of warnings) console.error(`tenslora: warning: ${w}`);
      console.log(o.json ? JSON.stringify(json) : text);
    });
}
