/**
 * What a run trains and how, from its RunConfig: the adapter (ranks from --ranks, --budget or
 * --iso-lora; or a --preset) or baseline, and the validated training settings. Shared by the CLI and the
 * browser studio, so both build the same adapter from the same settings.
 */
import { CONSTRUCTIONS, parseConstruction } from "../adapters/constructions.ts";
import { REFERENCE_METHOD, methodOf } from "../adapters/methods.ts";
import { parseBaseDType } from "../models/quantize-base.ts";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { parseFactorization } from "../adapters/factorizations/index.ts";
import { groupRanksForBudget } from "../adapters/params.ts";
import { type AdapterOptions, MAX_SCALING } from "../adapters/config.ts";
import { parsePreset, presetOptions } from "../adapters/presets/index.ts";
import { parseTargetModules } from "../adapters/targets.ts";
import { ConfigError } from "../errors.ts";
import type { TrainableSet } from "../pipeline/build.ts";
import type { Task } from "../models/types.ts";
import { createAdapter, defaultTargets, modelContext } from "../pipeline/context.ts";
import type { LoadedModel } from "../models/assemble.ts";
import type { TrainConfig } from "../train/trainer.ts";
import { checkValFraction } from "../train/validation.ts";
import { TASKS, taskOf } from "../tasks/index.ts";
import { type RunConfig, parseRanks } from "./run-config.ts";

/** Every method a run can train: the adapter constructions, a linear probe ("head") and full fine-tuning. */
export const METHODS = [...CONSTRUCTIONS, "head", "full"] as const;

function parseLayers(text: string): number[] {
  const parts = text.split(",").map((x) => x.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) throw new ConfigError(`--layers-to-transform takes block indices separated by commas (e.g. 0,1,2), got "${text}"`);
  return parts.map(Number);
}

/**
 * The adapter of a run: ranks from --ranks, --budget or --iso-lora, in that order; a --preset
 * fixes the construction, factorisation and targets (and takes one rank).
 */
export function adapterFor(model: LoadedModel, cfg: RunConfig): { adapter?: AdapterSet; trainable: TrainableSet; warnings: string[] } {
  if (cfg.preset) return presetAdapter(model, cfg);
  if (!(METHODS as readonly string[]).includes(cfg.construction)) {
    throw new ConfigError(`unknown construction "${cfg.construction}"; valid: ${METHODS.join(", ")}`);
  }
  if (cfg.construction === "head") return { trainable: "head", warnings: [] };
  if (cfg.construction === "full") return { trainable: "all", warnings: [] };
  const construction = parseConstruction(cfg.construction);
  const { peftAlpha } = methodOf(construction);
  const base = {
    construction,
    factorization: parseFactorization(cfg.factorization),
    headLayout: cfg.headLayout as "head_major" | "interleaved",
    targetModules: cfg.targetModules.trim() ? parseTargetModules(cfg.targetModules) : defaultTargets(model),
    layersToTransform: cfg.layersToTransform ? parseLayers(cfg.layersToTransform) : undefined,
    gqa: cfg.gqa as "mean" | "separate",
  };
  let ranks: number[];
  let groupRanks: Record<string, number[]> | undefined;
  if (cfg.ranks) ranks = parseRanks(cfg.ranks);
  // the method budgets are counted in runs at the budget's rank itself
  else if (construction === REFERENCE_METHOD) ranks = [cfg.isoLora];
  else {
    const budget = cfg.budget > 0 ? { total: cfg.budget } : { isoLora: cfg.isoLora };
    ({ groupRanks } = groupRanksForBudget(base, modelContext(model).sites, budget, { slack: cfg.rankSlack }));
    ranks = Object.values(groupRanks)[0];
  }
  const { set, warnings } = createAdapter(model, {
    ...base,
    ranks,
    groupRanks,
    scaling: peftAlpha ? undefined : cfg.scaling,
    loraAlpha: peftAlpha ? cfg.scaling * ranks[0] : undefined,
    seed: cfg.seed,
  });
  return { adapter: set, trainable: "adapter+head", warnings };
}

function presetAdapter(model: LoadedModel, cfg: RunConfig): { adapter: AdapterSet; trainable: TrainableSet; warnings: string[] } {
  const sites = modelContext(model).sites;
  const common = { headLayout: cfg.headLayout as "head_major" | "interleaved", scaling: cfg.scaling, seed: cfg.seed };
  let opts: AdapterOptions;
  if (cfg.ranks) {
    const ranks = parseRanks(cfg.ranks);
    if (ranks.length !== 1) throw new ConfigError(`--preset ${cfg.preset} takes one rank (the preset fixes the rest), got --ranks ${cfg.ranks}`);
    opts = presetOptions(cfg.preset, sites, ranks[0]);
  } else {
    const base = parsePreset(cfg.preset).options(sites);
    const budget = cfg.budget > 0 ? { total: cfg.budget } : { isoLora: cfg.isoLora };
    const { groupRanks } = groupRanksForBudget(base, sites, budget, { slack: cfg.rankSlack });
    opts = { ...base, ranks: Object.values(groupRanks)[0], groupRanks };
  }
  const { set, warnings } = createAdapter(model, { ...opts, ...common });
  return { adapter: set, trainable: "adapter+head", warnings };
}

/** What trainConfig checks without knowing the task: option ranges, the validation fraction, the core learning-rate scale. */
export function checkTrainSettings(cfg: RunConfig): void {
  checkRunOptions(cfg);
  checkValFraction(cfg.valFraction);
  if (!(cfg.coreLrScale > 0)) throw new ConfigError(`--core-lr-scale must be a positive number, got ${cfg.coreLrScale}`);
}

/** The trainer's settings for a run's configuration and task. */
export function trainConfig(cfg: RunConfig, task: Task): TrainConfig {
  const spec = taskOf(task);
  const metric = cfg.metric || spec.metrics[0];
  if (!spec.metrics.includes(metric)) throw new ConfigError(`unknown metric "${cfg.metric}" for ${task}; valid: ${spec.metrics.join(", ")}`);
  checkTrainSettings(cfg);
  return {
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    warmup: cfg.warmup >= 0 ? cfg.warmup : spec.defaultWarmup,
    minLr: cfg.minLr,
    seed: cfg.seed,
    evalEvery: cfg.evalEvery,
    saveEvery: cfg.saveEvery,
    maxGradNorm: cfg.maxGradNorm,
    metric,
    dropout: cfg.dropout,
    threads: cfg.threads || undefined,
    valFraction: cfg.valFraction,
    coreLrScale: cfg.coreLrScale,
    checkpointActivations: cfg.checkpointActivations || undefined,
    lossChunk: cfg.lossChunk >= 0 ? cfg.lossChunk : undefined,
  };
}

/** Ranges of the options ONNX Runtime or the trainer would otherwise reject with a stack (or accept silently). */
export function checkRunOptions(cfg: RunConfig): void {
  const bad = (flag: string, rule: string, v: unknown) => new ConfigError(`--${flag} must be ${rule}, got ${v}`);
  // the task decides which metrics apply (trainConfig); a name no task knows is refused before any loading
  const known = [...new Set(Object.values(TASKS).flatMap((t) => t.metrics))];
  if (cfg.metric && !known.includes(cfg.metric)) throw new ConfigError(`unknown metric "${cfg.metric}"; valid: ${known.join(", ")}`);
  for (const k of ["epochs", "batchSize"] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw bad(k === "batchSize" ? "batch-size" : k, "a positive integer", cfg[k]);
  }
  if (!(cfg.lr > 0 && cfg.lr <= 10)) throw bad("lr", "positive and at most 10", cfg.lr);
  if (!(Math.abs(cfg.scaling) <= MAX_SCALING))
    throw bad("scaling", `in [-${MAX_SCALING}, ${MAX_SCALING}] (larger updates overflow float32 when merged)`, cfg.scaling);
  if (!(cfg.rankSlack >= 0 && cfg.rankSlack < 1)) throw bad("rank-slack", "a fraction in [0, 1)", cfg.rankSlack);
  for (const k of ["budget", "isoLora"] as const) {
    if (!(Number.isSafeInteger(cfg[k]) && cfg[k] >= 0)) throw bad(k === "isoLora" ? "iso-lora" : k, "a whole number ≥ 0", cfg[k]);
  }
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw bad("dropout", "in [0, 1) (the probability of dropping a unit)", cfg.dropout);
  if (!(Number.isInteger(cfg.threads) && cfg.threads >= 0)) throw bad("threads", "an integer ≥ 1 (or 0 for all cores)", cfg.threads);
  if (!(Number.isInteger(cfg.maxLength) && cfg.maxLength >= 1)) throw bad("max-length", "a positive integer", cfg.maxLength);
  if (!(cfg.weightDecay >= 0)) throw bad("weight-decay", "≥ 0", cfg.weightDecay);
  if (!(cfg.minLr >= 0 && cfg.minLr <= cfg.lr)) throw bad("min-lr", `in [0, --lr ${cfg.lr}]`, cfg.minLr);
  if (!(cfg.warmup === -1 || (cfg.warmup >= 0 && cfg.warmup < 1))) throw bad("warmup", "a fraction in [0, 1)", cfg.warmup);
  if (!(cfg.maxGradNorm >= 0)) throw bad("max-grad-norm", "≥ 0 (0 = off)", cfg.maxGradNorm);
  const base = parseBaseDType(cfg.baseDtype);
  if (base !== "f32" && (cfg.construction === "full" || cfg.preset === "full")) {
    throw new ConfigError(`--construction full trains the linear weights, which --base-dtype ${base} freezes in ${base}; use --base-dtype f32 or an adapter`);
  }
  if (!(Number.isInteger(cfg.lossChunk) && cfg.lossChunk >= -1))
    throw bad("loss-chunk", "a whole number of positions (0 = whole, -1 = automatic)", cfg.lossChunk);
  if (!(Number.isInteger(cfg.numLabels) && (cfg.numLabels === 0 || cfg.numLabels >= 2)))
    throw bad("num-labels", "an integer ≥ 2 (a classifier needs two classes; 0 = from the data)", cfg.numLabels);
  for (const k of ["evalEvery", "saveEvery", "seed"] as const) {
    if (!(Number.isInteger(cfg[k]) && cfg[k] >= 0))
      throw bad(
        k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
        "an integer ≥ 0",
        cfg[k],
      );
  }
}
