/**
 * A model from its parts: config.json's object and the checkpoint's tensors, checked key by key
 * and shape by shape. A classification head whose size differs from the task's labels (or that
 * the checkpoint lacks) is freshly initialised. No file system: load.ts reads the parts from a
 * folder, the browser build from fetched bytes.
 */
import { ConfigError, FormatError } from "../errors.ts";
import type { CheckpointTensor, LazyCheckpointTensor } from "../io/checkpoint.ts";
import { WeightMapper } from "../io/weight-map.ts";
import { ConfigReader } from "./config-fields.ts";
import type { QuantizedWeights, WeightMap } from "../nn/params.ts";
import type { QuantizedMatrix } from "../tensor/quantize.ts";
import { type BaseDType, checkQuantizable, quantizableWeights, quantizeWeight } from "./quantize-base.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import { Rng } from "../tensor/random.ts";
import { bertFamily } from "./bert/model.ts";
import { robertaFamily } from "./roberta/family.ts";
import type { AnyFamily, FamilyEntry, Task } from "./types.ts";
import { vitFamily } from "./vit/model.ts";
import { llamaFamily, mistralFamily, qwen2Family } from "./llama/model.ts";

export type { AnyFamily, FamilyEntry } from "./types.ts";

/** The supported model families by `model_type`, each with its heads by task. */
export const FAMILIES: Readonly<Record<string, FamilyEntry>> = Object.fromEntries(
  [vitFamily, robertaFamily, llamaFamily, mistralFamily, qwen2Family, bertFamily].map((f) => [f.modelType, f]),
);

/** The default head of `modelType` (the head a config.json without `architectures` gets); undefined for a model type no family reads. */
export function defaultHead(modelType: unknown): AnyFamily | undefined {
  const entry = typeof modelType === "string" ? FAMILIES[modelType] : undefined;
  return entry && Object.values(entry.heads)[0];
}

/** A model in memory: its family, parsed config and weights, and where it came from. */
export interface LoadedModel {
  family: AnyFamily;
  // biome-ignore lint/suspicious/noExplicitAny: the family's parsed config, typed by the family that reads it
  config: any;
  weights: WeightMap;
  dir: string;
  /** The raw config.json, for writing merged folders back out. */
  rawConfig: Record<string, unknown>;
  /** True when the head was (re)initialised rather than loaded. */
  newHead: boolean;
  /** How the frozen linear weights are held (quantize-base.ts); absent = float32. */
  baseDtype?: BaseDType;
  /** The linear weights a quantized base holds quantized, absent from `weights`. */
  quantized?: QuantizedWeights;
}

/** How to load a model: its number of labels, class names and head initialisation. */
export interface LoadOptions {
  /** The task whose head to build (default: the one config.json's `architectures` names, else the model type's default). */
  task?: Task;
  /** The task's number of labels; a stored head of another size (or for other labels) is replaced. */
  numLabels?: number;
  /** Class names for id2label when the head is replaced. */
  labels?: string[];
  /** Seed of a new head's initialisation. */
  seed?: number;
  /** How to hold the frozen linear weights (default f32); f16 / int8 / int4 convert each as it is read. */
  baseDtype?: BaseDType;
}

/** The tasks a model type has heads for, its default first. */
export function familyTasks(modelType: string): Task[] {
  return Object.keys(FAMILIES[modelType]?.heads ?? {}) as Task[];
}

/** The family of config.json's model type with the head for `task` (default: the head its `architectures` names). */
export function familyOf(raw: Record<string, unknown>, source: string, task?: Task): AnyFamily {
  const type = raw.model_type;
  const fam = typeof type === "string" ? FAMILIES[type] : undefined;
  if (!fam) {
    throw new FormatError(`${source}: model_type ${JSON.stringify(type)} is not supported; supported: ${Object.keys(FAMILIES).join(", ")}`);
  }
  if (task !== undefined) {
    const found = fam.heads[task];
    if (!found)
      throw new ConfigError(`${source}: a ${fam.modelType} model does ${Object.keys(fam.heads).join(" or ")}, not ${task}; drop --task or pick one of those`);
    return found;
  }
  const arch = Array.isArray(raw.architectures) ? raw.architectures[0] : undefined;
  const heads = Object.entries(fam.heads).flatMap(([t, f]) => (fam.onRequest?.includes(t as Task) ? [] : [f]));
  return heads.find((f) => f.architecture !== undefined && f.architecture === arch) ?? heads[0];
}

/**
 * The model of `raw` (config.json's object) with weights from `checkpoint`; `configPath` and
 * `weightsPath` name the sources in errors, `dir` is recorded as the model's origin. Lazy
 * tensors are read one at a time, and with `opts.baseDtype` f16 / int8 / int4 each linear weight is
 * quantized before the next is read, so loading peaks near the quantized model plus one tensor.
 */
export function modelFromTensors(
  raw: Record<string, unknown>,
  checkpoint: ReadonlyMap<string, CheckpointTensor | LazyCheckpointTensor>,
  where: { dir: string; configPath: string; weightsPath: string },
  opts: LoadOptions = {},
): LoadedModel {
  const family = familyOf(raw, where.configPath, opts.task);
  const rawConfig = { ...raw };
  // a model saved from this one (merge, full fine-tuning) is read back with the same head
  if (family.architecture) rawConfig.architectures = [family.architecture];
  const storedLabels = new ConfigReader(raw, where.configPath).labels();
  if (opts.numLabels !== undefined) {
    if (!Number.isInteger(opts.numLabels) || opts.numLabels < 1) throw new ConfigError(`numLabels must be a positive integer, got ${opts.numLabels}`);
    const names = opts.labels ?? Array.from({ length: opts.numLabels }, (_, i) => `LABEL_${i}`);
    rawConfig.id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
    rawConfig.label2id = Object.fromEntries(names.map((n, i) => [n, i]));
    rawConfig.num_labels = opts.numLabels;
  }
  const config = family.parseConfig(rawConfig, where.configPath);
  checkLayerCount(config as { numHiddenLayers?: number }, checkpoint.keys(), where.configPath);
  const expected = family.parameterShapes(config);
  const head = family.headParameters(config);
  const mapper = new WeightMapper(family.checkpointRules?.(config) ?? []);
  // The head is loaded only when the checkpoint has one of the right size for the same labels.
  const sameLabels = !opts.labels || JSON.stringify(storedLabels) === JSON.stringify(opts.labels);
  const headFits =
    sameLabels &&
    head.every((k) => {
      const t = checkpoint.get(k);
      return t !== undefined && t.shape.join() === expected.get(k)!.join();
    });
  const body = new Map([...checkpoint].filter(([k]) => headFits || !head.includes(k)));
  const mapped = new Set([...body.keys()].map((k) => mapper.map(k)).flatMap((d) => (d === "ignore" ? [] : [d.target])));
  const missing = (family.optionalParameters?.(config) ?? []).filter((k: string) => !mapped.has(k));
  const want = new Map([...expected].filter(([k]) => (headFits || !head.includes(k)) && !missing.includes(k)));
  const baseDtype = opts.baseDtype ?? "f32";
  checkQuantizable(family, baseDtype);
  const toQuantize = new Set(baseDtype === "f32" ? [] : quantizableWeights({ family, config }));
  const weights: WeightMap = new Map();
  const quantized = new Map<string, QuantizedMatrix>();
  for (const [target, { shape, data }] of mapper.load(body, want, where.weightsPath)) {
    const bad = describeNonFinite(data);
    if (bad) throw new FormatError(`${where.weightsPath}: tensor "${target}" holds ${bad}; the checkpoint is damaged, restore or re-download it`);
    if (baseDtype !== "f32" && toQuantize.has(target)) quantized.set(target, quantizeWeight({ shape, data }, baseDtype));
    else weights.set(target, { shape, data });
  }
  if (!headFits) initHead(weights, expected, head, opts.seed ?? 0);
  if (missing.length) initHead(weights, expected, missing, (opts.seed ?? 0) + 1);
  const model: LoadedModel = { family, config, weights, dir: where.dir, rawConfig, newHead: !headFits };
  return baseDtype === "f32" ? model : { ...model, quantized, baseDtype };
}

/**
 * A config may not claim more layers than the weights hold: the claim sizes every per-layer
 * structure (shapes, graphs, buffers) before any weight is compared, so `num_hidden_layers:
 * 1000000` over a 4-layer file would exhaust memory instead of failing.
 */
function checkLayerCount(config: { numHiddenLayers?: number }, keys: Iterable<string>, configPath: string): void {
  const claimed = config.numHiddenLayers;
  if (claimed === undefined) return;
  let held = 0;
  for (const k of keys) {
    const m = /(?:^|\.)layers?\.(\d+)\./.exec(k);
    if (m) held = Math.max(held, Number(m[1]) + 1);
  }
  if (claimed > held) {
    throw new ConfigError(
      `${configPath}: num_hidden_layers is ${claimed} but the weights hold ${held} layer${held === 1 ? "" : "s"}; set num_hidden_layers to ${held} (or use the weights the config belongs to)`,
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
