/**
 * Load a HuggingFace model folder (config.json + model.safetensors or shards) into a family's
 * config and a weight map, checking every key and shape at once. A classification head whose
 * size differs from the task's labels (or that the checkpoint lacks) is freshly initialised.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, FormatError } from "../errors.ts";
import { WEIGHTS_FILE, WEIGHTS_INDEX_FILE, loadCheckpointTensors, readJsonFile } from "../io/checkpoint.ts";
import { hubCacheDir, looksLikeRepoId, resolveModelFromCache } from "../io/hub-cache.ts";
import { WeightMapper, type WeightRule } from "../io/weight-map.ts";
import { ConfigReader } from "./config-fields.ts";
import type { WeightMap } from "../nn/params.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import { Rng } from "../tensor/random.ts";
import { roberta } from "./roberta/model.ts";
import type { ModelFamily } from "./types.ts";
import { vit } from "./vit/model.ts";
import { llama, mistral, qwen2 } from "./llama/model.ts";

// The registry is heterogeneous by design: each family carries its own config and input types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFamily = ModelFamily<any, any>;

export const FAMILIES: Record<string, AnyFamily> = { vit, roberta, llama, mistral, qwen2 };

/** Keys checkpoints carry that these classification models do not use, and legacy names. */
const RULES: Record<string, WeightRule[]> = {
  vit: [{ ignore: /vit\.pooler\..+/ }],
  roberta: [
    { ignore: /roberta\.pooler\..+/ },
    { ignore: /lm_head\..+/ },
    { ignore: "roberta.embeddings.position_ids" },
    { pattern: /(.+)\.LayerNorm\.gamma/, to: "$1.LayerNorm.weight" },
    { pattern: /(.+)\.LayerNorm\.beta/, to: "$1.LayerNorm.bias" },
  ],
};

export interface LoadedModel {
  family: AnyFamily;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  config: any;
  weights: WeightMap;
  dir: string;
  /** The raw config.json, for writing merged folders back out. */
  rawConfig: Record<string, unknown>;
  /** True when the head was (re)initialised rather than loaded. */
  newHead: boolean;
}

export interface LoadOptions {
  /** The task's number of labels; a stored head of another size (or for other labels) is replaced. */
  numLabels?: number;
  /** Class names for id2label when the head is replaced. */
  labels?: string[];
  /** Seed of a new head's initialisation. */
  seed?: number;
}

export function familyOf(raw: Record<string, unknown>, source: string): AnyFamily {
  const type = raw.model_type;
  const fam = typeof type === "string" ? FAMILIES[type] : undefined;
  if (!fam) {
    throw new FormatError(`${source}: model_type ${JSON.stringify(type)} is not supported; supported: ${Object.keys(FAMILIES).join(", ")}`);
  }
  return fam;
}

export function readModelConfig(dir: string): { family: AnyFamily; raw: Record<string, unknown> } {
  if (looksLikeRepoId(dir) && resolveModelFromCache(dir) === dir) {
    throw new ConfigError(
      `--model ${dir}: no such folder, and no complete download of the Hub repository "${dir}" in the Hugging Face cache (${hubCacheDir()}); run: tenslora download ${dir}`,
    );
  }
  const path = join(resolveModelFromCache(dir), "config.json");
  const raw = readJsonFile(path, "model config") as Record<string, unknown>;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new FormatError(`${path}: must hold a JSON object`);
  return { family: familyOf(raw, path), raw };
}

/** `dir` is a model folder, or a Hub repo id ("org/name") found in the Hugging Face cache. */
export function loadModel(spec: string, opts: LoadOptions = {}): LoadedModel {
  const dir = resolveModelFromCache(spec);
  const { family, raw } = readModelConfig(dir);
  const rawConfig = { ...raw };
  const storedLabels = new ConfigReader(raw, join(dir, "config.json")).labels();
  if (opts.numLabels !== undefined) {
    if (!Number.isInteger(opts.numLabels) || opts.numLabels < 1) throw new ConfigError(`numLabels must be a positive integer, got ${opts.numLabels}`);
    const names = opts.labels ?? Array.from({ length: opts.numLabels }, (_, i) => `LABEL_${i}`);
    rawConfig.id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
    rawConfig.label2id = Object.fromEntries(names.map((n, i) => [n, i]));
    rawConfig.num_labels = opts.numLabels;
  }
  const config = family.parseConfig(rawConfig, join(dir, "config.json"));
  const checkpoint = loadCheckpointTensors(dir);
  checkLayerCount(config as { numHiddenLayers?: number }, checkpoint.keys(), dir);
  const expected = family.parameterShapes(config);
  const head = family.headParameters(config);
  const mapper = new WeightMapper(family.checkpointRules?.(config) ?? RULES[family.modelType] ?? []);
  // The head is loaded only when the checkpoint has one of the right size for the same labels.
  const sameLabels = !opts.labels || JSON.stringify(storedLabels) === JSON.stringify(opts.labels);
  const headFits =
    sameLabels &&
    head.every((k) => {
      const t = checkpoint.get(k);
      return t !== undefined && t.shape.join() === expected.get(k)!.join();
    });
  const body = new Map([...checkpoint].filter(([k]) => headFits || !head.includes(k)));
  const want = new Map([...expected].filter(([k]) => headFits || !head.includes(k)));
  // errors name the checkpoint file (or the shard index), not just the folder
  const source = join(dir, existsSync(join(dir, WEIGHTS_FILE)) ? WEIGHTS_FILE : WEIGHTS_INDEX_FILE);
  const weights: WeightMap = mapper.load(body, want, source);
  for (const [k, t] of weights) {
    const bad = describeNonFinite(t.data);
    if (bad) throw new FormatError(`${source}: tensor "${k}" holds ${bad}; the checkpoint is damaged, restore or re-download it`);
  }
  if (!headFits) initHead(weights, expected, head, opts.seed ?? 0);
  return { family, config, weights, dir, rawConfig, newHead: !headFits };
}

/**
 * A config may not claim more layers than the weights hold: the claim sizes every per-layer
 * structure (shapes, graphs, buffers) before any weight is compared, so `num_hidden_layers:
 * 1000000` over a 4-layer file would exhaust memory instead of failing.
 */
function checkLayerCount(config: { numHiddenLayers?: number }, keys: Iterable<string>, dir: string): void {
  const claimed = config.numHiddenLayers;
  if (claimed === undefined) return;
  let held = 0;
  for (const k of keys) {
    const m = /(?:^|\.)layers?\.(\d+)\./.exec(k);
    if (m) held = Math.max(held, Number(m[1]) + 1);
  }
  if (claimed > held) {
    throw new ConfigError(
      `${join(dir, "config.json")}: num_hidden_layers is ${claimed} but the weights hold ${held} layer${held === 1 ? "" : "s"}; set num_hidden_layers to ${held} (or use the weights the config belongs to)`,
    );
  }
}

/** HF's init: weights ~ N(0, 0.02²), biases 0. */
export function initHead(weights: WeightMap, shapes: Map<string, number[]>, names: string[], seed: number): void {
  const rng = new Rng(seed ^ 0x5eed);
  for (const name of names) {
    const shape = shapes.get(name)!;
    const n = shape.reduce((a, b) => a * b, 1);
    weights.set(name, { shape, data: name.endsWith(".bias") ? new Float32Array(n) : rng.normalArray(n, 0.02) });
  }
}
