/**
 * `--ranks auto`: a short warm-up run of a high-rank LoRA on the training data (the validation
 * split stays held out), whose stacked update's per-mode energies (`analyze`'s spectrum) choose
 * each construction's ranks at the budget (see adapters/energy-ranks.ts). One warm-up serves
 * every construction and budget; it is kept in its folder and reused.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { groupState } from "../adapters/adapter-set.ts";
import { stackAdapterUpdates } from "../adapters/analysis.ts";
import { type AdapterGroup, planAdapter } from "../adapters/config.ts";
import { modeEnergies, ranksFromEnergy } from "../adapters/energy-ranks.ts";
import { loadAdapter } from "../adapters/format.ts";
import type { HeadLayout } from "../adapters/reference.ts";
import { ConfigError } from "../errors.ts";
import { createAdapter, defaultTargets, modelContext } from "../pipeline/context.ts";
import type { LoadedModel } from "../models/load.ts";
import type { Runtime } from "../runtime/types.ts";
import { runFolderStore } from "../train/run-folder-store.ts";
import type { TaskData } from "../tasks/task-data.ts";
import { type TrainConfig, train } from "../train/trainer.ts";

export interface AutoRankOptions {
  /** LoRA rank of the warm-up (capped at the layers' smaller side); high enough not to cap any mode's spectrum. */
  warmupRank: number;
  warmupEpochs: number;
}

export const AUTO_RANK_DEFAULTS: AutoRankOptions = { warmupRank: 32, warmupEpochs: 2 };

interface WarmupSetup extends Partial<AutoRankOptions> {
  runtime: Runtime;
  loadModel: (seed: number) => Promise<LoadedModel>;
  data: TaskData;
  config: TrainConfig;
  seed: number;
  outDir: string;
}

const warmups = new Map<string, Promise<{ model: LoadedModel; dir: string }>>();

async function warmup(s: WarmupSetup): Promise<{ model: LoadedModel; dir: string }> {
  const o = { ...AUTO_RANK_DEFAULTS, ...s };
  if (!(Number.isInteger(o.warmupEpochs) && o.warmupEpochs >= 1))
    throw new ConfigError(`auto ranks: the warm-up needs a whole number of epochs ≥ 1, got ${o.warmupEpochs}`);
  const model = await s.loadModel(s.seed);
  const config = { ...s.config, seed: s.seed, epochs: o.warmupEpochs, coreLrScale: 1 };
  const { groups } = planAdapter({ construction: "lora", ranks: 1, targetModules: defaultTargets(model) }, modelContext(model).sites);
  const rank = Math.min(o.warmupRank, ...groups.flatMap((g) => [g.shape.dIn, g.shape.dOut]));
  const settings = JSON.stringify({ rank, config: { ...config, threads: undefined } });
  const done = join(s.outDir, "settings.json");
  if (existsSync(done)) {
    if (readFileSync(done, "utf8") !== settings)
      throw new ConfigError(`${s.outDir} holds a warm-up made with other settings; compare into a new --out (or delete that folder)`);
    return { model, dir: join(s.outDir, "last") };
  }
  const { set } = createAdapter(model, { construction: "lora", ranks: rank, seed: s.seed });
  await train({ model, adapter: set, trainable: "adapter+head", data: s.data, config, store: runFolderStore(s.outDir), runtime: s.runtime });
  writeFileAtomic(done, settings);
  return { model, dir: join(s.outDir, "last") };
}

/** Ranks for the adapter group `group` (of the warm-up's layers) at `budget` parameters from the warm-up's spectrum. */
export async function autoRanks(s: WarmupSetup, group: AdapterGroup, headLayout: HeadLayout, budget: number): Promise<number[]> {
  if (!warmups.has(s.outDir)) warmups.set(s.outDir, warmup(s));
  const { model, dir } = await warmups.get(s.outDir)!;
  const { set } = loadAdapter(dir, modelContext(model));
  const warm = set.groups.find((g) => g.name === group.name);
  if (!warm) throw new ConfigError(`auto ranks: the warm-up adapted no group "${group.name}" (it has ${set.groups.map((g) => g.name).join(", ")})`);
  return ranksFromEnergy(group.construction, group.shape, modeEnergies(stackAdapterUpdates(groupState(set, warm), headLayout)), budget);
}
