/**
 * What a run trains and how, from its RunConfig: the adapter (ranks from --ranks, --budget or
 * --iso-lora) or baseline, and the validated training settings. Shared by the CLI and the
 * browser studio, so both build the same adapter from the same settings.
 */
import { CONSTRUCTIONS } from "../adapters/constructions.ts";
import { adapterShape, type AdapterSet } from "../adapters/adapter-set.ts";
import { isoLoRA, ranksForBudget } from "../adapters/params.ts";
import { ConfigError } from "../errors.ts";
import type { TrainableSet } from "../models/build.ts";
import { createAdapter, modelContext } from "../models/context.ts";
import type { LoadedModel } from "../models/assemble.ts";
import { METRICS, type MetricName, type TrainConfig } from "../train/trainer.ts";
import { type RunConfig, parseRanks } from "./run-config.ts";

export const METHODS = [...CONSTRUCTIONS, "head", "full"] as const;

/** The adapter of a run: ranks from --ranks, --budget or --iso-lora, in that order. */
export function adapterFor(model: LoadedModel, cfg: RunConfig): { adapter?: AdapterSet; trainable: TrainableSet; warnings: string[] } {
  if (!(METHODS as readonly string[]).includes(cfg.construction)) {
    throw new ConfigError(`unknown construction "${cfg.construction}"; valid: ${METHODS.join(", ")}`);
  }
  if (cfg.construction === "head") return { trainable: "head", warnings: [] };
  if (cfg.construction === "full") return { trainable: "all", warnings: [] };
  const ctx = modelContext(model);
  const targets = cfg.targetModules.split(",").map((s) => s.trim()).filter(Boolean);
  const { shape } = adapterShape(ctx.sites, targets, ctx.heads, ctx.layers);
  const factorization = cfg.factorization as "tucker" | "cp";
  let ranks: number[];
  if (cfg.ranks) ranks = parseRanks(cfg.ranks);
  else if (cfg.construction === "lora") ranks = [cfg.isoLora];
  else ranks = ranksForBudget(cfg.construction as never, shape, cfg.budget > 0 ? cfg.budget : isoLoRA(shape, cfg.isoLora), { factorization, slack: cfg.rankSlack }).ranks;
  const { set, warnings } = createAdapter(model, {
    construction: cfg.construction,
    ranks,
    factorization,
    headLayout: cfg.headLayout as "head_major" | "interleaved",
    targetModules: targets,
    scaling: cfg.construction === "lora" ? undefined : cfg.scaling,
    loraAlpha: cfg.construction === "lora" ? cfg.scaling * ranks[0] : undefined,
    seed: cfg.seed,
  });
  return { adapter: set, trainable: "adapter+head", warnings };
}

export function trainConfig(cfg: RunConfig, task: "image-classification" | "text-classification"): TrainConfig {
  if (!(METRICS as readonly string[]).includes(cfg.metric)) throw new ConfigError(`unknown metric "${cfg.metric}"; valid: ${METRICS.join(", ")}`);
  for (const k of ["epochs", "batchSize"] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new ConfigError(`--${k === "batchSize" ? "batch-size" : k} must be a positive integer, got ${cfg[k]}`);
  }
  if (!(cfg.lr > 0)) throw new ConfigError(`--lr must be positive, got ${cfg.lr}`);
  return {
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    warmup: cfg.warmup >= 0 ? cfg.warmup : task === "text-classification" ? 0.1 : 0,
    minLr: cfg.minLr,
    seed: cfg.seed,
    evalEvery: cfg.evalEvery,
    saveEvery: cfg.saveEvery,
    maxGradNorm: cfg.maxGradNorm,
    metric: cfg.metric as MetricName,
    dropout: cfg.dropout,
    threads: cfg.threads || undefined,
  };
}
