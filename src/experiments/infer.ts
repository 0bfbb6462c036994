/**
 * The library side of `tenslora infer` (and of `eval` and `merge`): a model folder plus what a run
 * saved (an adapter folder, a head, or a full model folder, or a PEFT adapter) as one model with
 * its class names; inputs by their HuggingFace names from a safetensors file, image files or text;
 * one forward pass; logits and the last hidden state back as F32, and labelled probabilities.
 */
import { type BaseDType, withBaseDType } from "../models/quantize-base.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import { looksLikeRepoId, resolveModelFromCache } from "../io/hub-cache.ts";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from "../adapters/format.ts";
import { ImageProcessor } from "../data/image-preprocess.ts";
import { TextTokenizer } from "../data/tokenize.ts";
import { ConfigError, DataError, FormatError, ShapeError } from "../errors.ts";
import { WEIGHTS_FILE, readJsonFile } from "../io/checkpoint.ts";
import { toBigInt64, toFloat32 } from "../io/dtype-convert.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { buildModelGraph } from "../pipeline/build.ts";
import { ConfigReader } from "../models/config-fields.ts";
import { type LoadedModel, type ModelConfigFile, familyOf, familyTasks, loadModel, readModelConfig } from "../models/load.ts";
import type { Task } from "../models/types.ts";
import { TASKS } from "../tasks/index.ts";
import type { HostTensor } from "../tensor/host.ts";
import type { CompiledGraph, Runtime } from "../runtime/types.ts";
import type { LmEvalResult } from "../tasks/causal-lm.ts";
import type { TokenEvalResult } from "../tasks/token-classification.ts";
import { lmDataFor } from "./lm-datasets.ts";
import { HEAD_FILE, LABELS_FILE, loadTrained } from "../train/artifacts.ts";
import { type EvalSplit, type TaskData, wholeAsTest } from "../tasks/task-data.ts";
import type { EvalResult } from "../tasks/classification.ts";
import { DATA_FORMATS, type DataFormat, modelImageConfig, openDataset, positionLimit, taskDataFor } from "./datasets.ts";
import { taskOf } from "../tasks/index.ts";

const HEAD_PREFIX = "base_model.model.";

/** A base model with a trained adapter or head applied, ready for inference. */
export interface TrainedModel {
  /** The model with the trained head (or every trained weight) in place; adapters stay separate. */
  model: LoadedModel;
  adapter?: AdapterSet;
  /** Class names, index = class id (id2label). */
  labels: string[];
  /** The classifier was missing or mis-shaped in the model folder and no adapter brought one: it is random. */
  randomHead?: boolean;
}

/** What `--adapter DIR` holds: an adapter, a head, a full model folder; anything else is an error naming the fix. */
function describeTrainedDir(dir: string): "adapter" | "head" | "model" {
  if (!existsSync(dir)) throw new ConfigError(`--adapter ${dir} does not exist; pass an adapter folder (e.g. RUN_DIR/best)`);
  if (!statSync(dir).isDirectory())
    throw new ConfigError(`--adapter ${dir} is a file; pass the folder that holds ${ADAPTER_CONFIG}, ${HEAD_FILE} or ${WEIGHTS_FILE}`);
  if (existsSync(join(dir, ADAPTER_CONFIG))) return "adapter";
  if (existsSync(join(dir, HEAD_FILE))) return "head";
  if (existsSync(join(dir, WEIGHTS_FILE))) return "model";
  if (existsSync(join(dir, "best")) || existsSync(join(dir, "last"))) {
    throw new ConfigError(`--adapter ${dir} is a run folder; pass ${join(dir, "best")} (best test metric) or ${join(dir, "last")} (final step)`);
  }
  throw new FormatError(`${dir} holds no adapter (${ADAPTER_CONFIG}), head (${HEAD_FILE}) or model (${WEIGHTS_FILE}); pass the folder a run saved`);
}

/**
 * Class names of the head saved in `dir`: labels.json (our runs), config.json (a full model
 * folder), else LABEL_i for as many classes as the stored output bias has; undefined when the
 * folder holds no head (a plain PEFT adapter: the model's own head is used).
 */
function trainedLabels(dir: string, kind: "adapter" | "head" | "model", source: ModelConfigFile, task: Task | undefined): string[] | undefined {
  const fromJson = (path: string) => {
    const raw = readJsonFile(path, "labels file") as Record<string, unknown>;
    return new ConfigReader(raw, path).labels();
  };
  if (existsSync(join(dir, LABELS_FILE))) return fromJson(join(dir, LABELS_FILE));
  if (kind === "model") return existsSync(join(dir, "config.json")) ? fromJson(join(dir, "config.json")) : undefined;
  const configPath = join(source.dir, "config.json");
  const family = familyOf(source.raw, configPath, task);
  const heads = family.headParameters(family.parseConfig(source.raw, configPath));
  const outBias = heads[heads.length - 1]; // the logits' bias, shape [numLabels], in every family
  const file = kind === "adapter" ? join(dir, ADAPTER_WEIGHTS) : join(dir, HEAD_FILE);
  const stored = readSafetensors(file).tensors.get(kind === "adapter" ? HEAD_PREFIX + outBias : outBias);
  if (!stored) return undefined;
  if (stored.shape.length !== 1 || stored.shape[0] < 1) throw new ShapeError(`${file}: "${outBias}" has shape [${stored.shape}], expected [numLabels]`);
  return Array.from({ length: stored.shape[0] }, (_, i) => `LABEL_${i}`);
}

/** Every trained weight must be a model weight of the same shape (all problems at once). */
function checkFullWeights(dir: string, model: LoadedModel, weights: Map<string, { shape: number[] }>): void {
  const problems: string[] = [];
  for (const [k, t] of weights) {
    const want = model.weights.get(k);
    if (!want) problems.push(`unexpected "${k}" [${t.shape}]`);
    else if (want.shape.join() !== t.shape.join()) problems.push(`"${k}": expected [${want.shape}], found [${t.shape}]`);
  }
  if (problems.length) {
    throw new ShapeError(
      `${join(dir, WEIGHTS_FILE)} does not fit the model in ${model.dir}:\n  ${problems.slice(0, 12).join("\n  ")}` +
        (problems.length > 12 ? `\n  … and ${problems.length - 12} more` : "") +
        `\nPass the model folder the run was trained from.`,
    );
  }
}

/**
 * The task of what a run saved, for model types with several heads: PEFT's task_type of an
 * adapter, labels.json's "task" beside a head, the architectures of a full model's config.json.
 * Undefined (the model's own head) when it names none the model type has.
 */
function trainedTask(dir: string, kind: "adapter" | "head" | "model", source: ModelConfigFile): Task | undefined {
  const read = (f: string) => (existsSync(join(dir, f)) ? (readJsonFile(join(dir, f), f) as Record<string, unknown>) : {});
  let task: unknown;
  if (kind === "adapter") {
    const type = read(ADAPTER_CONFIG).task_type;
    task = Object.values(TASKS).find((t) => t.peftTaskType !== undefined && t.peftTaskType === type)?.name;
  } else if (kind === "head") task = read(LABELS_FILE).task;
  else {
    const raw = read("config.json");
    task = raw.model_type ? familyOf(raw, join(dir, "config.json")).task : undefined;
  }
  return familyTasks(source.family.modelType).find((t) => t === task);
}

/** Load `modelDir` with what a run saved in `adapterDir` (optional) applied. */
/** With `baseDtype` f16 / int8 / int4 the frozen linear weights are held quantized (quantize-base.ts). */
export function loadTrainedModel(modelSpec: string, adapterDir?: string, opts: { seed?: number; baseDtype?: BaseDType } = {}): TrainedModel {
  const tm = loadTrainedOnBase(modelSpec, adapterDir, opts);
  // a fully fine-tuned model's weights replace the base's in float32 and are quantized after
  return { ...tm, model: withBaseDType(tm.model, opts.baseDtype ?? "f32") };
}

function loadTrainedOnBase(modelSpec: string, adapterDir: string | undefined, opts: { seed?: number; baseDtype?: BaseDType }): TrainedModel {
  const modelDir = resolveModelFromCache(modelSpec);
  if (!looksLikeRepoId(modelDir) && !existsSync(join(modelDir, "config.json"))) {
    throw new ConfigError(`--model ${modelDir} is not a HuggingFace model folder (no config.json)`);
  }
  if (!adapterDir) {
    const model = loadModel(modelDir, { baseDtype: opts.baseDtype });
    return { model, labels: model.config.id2label ?? labelNames(model.config.numLabels), randomHead: model.newHead };
  }
  const kind = describeTrainedDir(adapterDir);
  // config.json is read once: the task, the labels and the load all start from it
  const source = readModelConfig(modelDir);
  const task = trainedTask(adapterDir, kind, source);
  const labels = trainedLabels(adapterDir, kind, source, task);
  const baseDtype = kind === "model" ? undefined : opts.baseDtype;
  const model = loadModel(source, { ...(labels ? { numLabels: labels.length, labels, seed: opts.seed } : {}), task, baseDtype });
  const trained = loadTrained(adapterDir, model);
  if (kind === "model") checkFullWeights(adapterDir, model, trained.weights);
  const heads = model.family.headParameters(model.config);
  if (model.newHead && !heads.every((k) => trained.weights.has(k))) {
    throw new FormatError(
      `${adapterDir} holds no trained head for its ${labels?.length} labels; pass the folder the run saved (it keeps the head beside the adapter)`,
    );
  }
  const weights = new Map(model.weights);
  for (const [k, t] of trained.weights) weights.set(k, t);
  return { model: { ...model, weights }, adapter: trained.adapter, labels: labels ?? model.config.id2label ?? labelNames(model.config.numLabels) };
}

const labelNames = (n: number) => Array.from({ length: n }, (_, i) => `LABEL_${i}`);

// ---------------------------------------------------------------------------------------------
// inputs

const FLOAT_INPUTS = new Set(["pixel_values"]);

/** Model inputs by HF name from a safetensors file; other keys (labels, golden outputs) are listed in `ignored`. */
export function readModelInputs(path: string, model: LoadedModel): { inputs: Record<string, HostTensor>; ignored: string[] } {
  if (!existsSync(path)) throw new ConfigError(`--inputs ${path} does not exist`);
  const file = readSafetensors(path).tensors;
  const { required, optional } = model.family.inputNames as { required: string[]; optional: string[] };
  const missing = required.filter((k) => !file.has(k));
  if (missing.length) {
    throw new DataError(
      `${path} has no ${missing.map((k) => `"${k}"`).join(", ")}; a ${model.family.modelType} model takes ${required.join(" + ")}` +
        (optional.length ? ` [+ ${optional.join(", ")}]` : "") +
        ` (found: ${[...file.keys()].join(", ") || "no tensors"})`,
    );
  }
  const inputs: Record<string, HostTensor> = {};
  for (const k of [...required, ...optional]) {
    const e = file.get(k);
    if (!e) continue;
    inputs[k] = FLOAT_INPUTS.has(k)
      ? { dtype: "float32", shape: e.shape, data: toFloat32(e, `${path}: ${k}`) }
      : { dtype: "int64", shape: e.shape, data: toBigInt64(e, `${path}: ${k}`) };
  }
  checkInputs(inputs, model, path);
  const known = new Set([...required, ...optional]);
  return { inputs, ignored: [...file.keys()].filter((k) => !known.has(k)) };
}

/** Shapes and id ranges against the config, so a bad file is a clear error rather than a native one. */
export function checkInputs(inputs: Record<string, HostTensor>, model: LoadedModel, source: string): void {
  const cfg = model.config as Record<string, number>;
  const fail = (msg: string): never => {
    throw new ShapeError(`${source}: ${msg}`);
  };
  const px = inputs.pixel_values;
  if (px) {
    const want = [cfg.numChannels, cfg.imageSize, cfg.imageSize];
    if (px.shape.length !== 4 || px.shape.slice(1).join() !== want.join() || px.shape[0] < 1) {
      fail(`pixel_values has shape [${px.shape}], expected [batch, ${want.join(", ")}] (num_channels, image_size, image_size from config.json)`);
    }
  }
  const ids = inputs.input_ids;
  if (!ids) return;
  if (ids.shape.length !== 2 || ids.shape[0] < 1 || ids.shape[1] < 1) fail(`input_ids has shape [${ids.shape}], expected [batch, sequence]`);
  for (const k of ["attention_mask", "token_type_ids"]) {
    const t = inputs[k];
    if (t && t.shape.join() !== ids.shape.join()) fail(`${k} has shape [${t.shape}] but input_ids has [${ids.shape}]; they must match`);
  }
  const range = (k: string, hi: number, what: string) => {
    const t = inputs[k];
    if (!t) return;
    const data = t.data as BigInt64Array;
    for (let i = 0; i < data.length; i++) {
      if (data[i] < 0n || data[i] >= BigInt(hi))
        fail(`${k}[${Math.floor(i / ids.shape[1])}, ${i % ids.shape[1]}] = ${data[i]} is outside [0, ${hi}) (${what})`);
    }
  };
  if (cfg.vocabSize) range("input_ids", cfg.vocabSize, "vocab_size");
  range("attention_mask", 2, "0 or 1");
  if (cfg.typeVocabSize) range("token_type_ids", cfg.typeVocabSize, "type_vocab_size");
  const maxT = positionLimit(model);
  if (ids.shape[1] > maxT)
    fail(`sequences of ${ids.shape[1]} tokens exceed the model's ${maxT} positions (max_position_embeddings ${cfg.maxPositionEmbeddings}); truncate them`);
}

/** pixel_values [N, C, S, S] for image files through the model's preprocessing. */
export async function imageInputs(model: LoadedModel, paths: string[]): Promise<Record<string, HostTensor>> {
  if (taskOf(model.family.task).input !== "image")
    throw new ConfigError(`--images needs an image model; ${model.dir} is ${model.family.modelType} (use --text)`);
  const cfg = model.config as { numChannels: number; imageSize: number };
  const proc = new ImageProcessor(modelImageConfig(model));
  const plane = cfg.imageSize * cfg.imageSize;
  const per = cfg.numChannels * plane;
  const data = new Float32Array(paths.length * per);
  for (const [i, p] of paths.entries()) {
    if (!existsSync(p)) throw new DataError(`image ${p} does not exist`);
    let px = await proc.process(p);
    if (cfg.numChannels === 1 && px.length === 3 * plane) px = px.subarray(0, plane).map((v, j) => (v + px[plane + j] + px[2 * plane + j]) / 3);
    if (px.length !== per)
      throw new ConfigError(
        `the image preprocessing gives ${px.length} values per image but the model takes ${cfg.numChannels}×${cfg.imageSize}×${cfg.imageSize}; fix preprocessor_config.json's size`,
      );
    data.set(px, i * per);
  }
  return { pixel_values: { dtype: "float32", shape: [paths.length, cfg.numChannels, cfg.imageSize, cfg.imageSize], data } };
}

/** input_ids, attention_mask, token_type_ids for texts (and pairs) through the folder's tokenizer.json. */
export function textInputs(model: LoadedModel, texts: string[], pairs?: string[], maxLength?: number): Record<string, HostTensor> {
  if (!model.family.inputNames.required.includes("input_ids") || taskOf(model.family.task).generates)
    throw new ConfigError(
      `--text needs a text classifier; ${model.dir} is ${model.family.modelType} ${model.family.task} (use --images, or generate for a causal LM)`,
    );
  if (pairs && pairs.length !== texts.length)
    throw new ConfigError(`--text-pair needs one second text per --text: got ${texts.length} texts and ${pairs.length} pairs`);
  if (!existsSync(join(model.dir, "tokenizer.json")))
    throw new ConfigError(`${model.dir} has no tokenizer.json; --text needs the tokenizer files of the model folder`);
  const tok = TextTokenizer.fromDir(model.dir);
  const m = Math.min(maxLength ?? tok.modelMaxLength ?? 512, positionLimit(model));
  const batch = tok.encodeBatch(
    texts.map((text, i) => ({ text, textPair: pairs?.[i] })),
    { maxLength: m, truncation: true },
  );
  const t = (data: BigInt64Array): HostTensor => ({ dtype: "int64", shape: [...batch.shape], data });
  return { input_ids: t(batch.inputIds), attention_mask: t(batch.attentionMask), token_type_ids: t(batch.tokenTypeIds) };
}

// ---------------------------------------------------------------------------------------------
// the forward pass and its outputs

/** What inference returns per input: logits and, for classifiers, predictions. */
export interface InferenceOutputs {
  logits: HostTensor; // [B, numLabels] float32
  last_hidden_state: HostTensor; // [B, T, d] float32
}

/** One forward pass over HF-named inputs, all rows at once. */
export async function runInference(
  tm: { model: LoadedModel; adapter?: AdapterSet },
  inputs: Record<string, HostTensor>,
  opts: { runtime: Runtime; threads?: number },
): Promise<InferenceOutputs> {
  const { model, adapter } = tm;
  checkInputs(inputs, model, "inputs");
  const lead = inputs.pixel_values ?? inputs.input_ids;
  if (!lead) throw new DataError(`no model inputs: a ${model.family.modelType} model takes ${model.family.inputNames.required.join(" + ")}`);
  const built = buildModelGraph({ model, adapter, batch: lead.shape[0], seqLen: inputs.input_ids?.shape[1], trainable: "none", hiddenState: true });
  const compiler = opts.runtime.compiler();
  try {
    const graph = await compiler.compile(built.graph, { threads: opts.threads, outputs: ["logits", "last_hidden_state"] });
    try {
      const out = await graph.run(model.family.feeds(model.config, inputs));
      refuseNonFiniteLogits(out.logits.data as Float32Array, model.dir);
      return { logits: out.logits, last_hidden_state: out.last_hidden_state };
    } finally {
      graph.dispose();
    }
  } finally {
    compiler.dispose();
  }
}

/** NaN logits would print as "NaN%" or count as class 0: refuse them, pointing at the weights. */
export function refuseNonFiniteLogits(logits: Float32Array, modelDir: string): void {
  const bad = describeNonFinite(logits);
  if (bad)
    throw new FormatError(
      `the model (${modelDir}, with its adapter) produced logits with ${bad}; its weights or adapter hold non-finite or overflowing values, retrain or restore them`,
    );
}

/** Write inference outputs to a file (JSON), atomically. */
export function writeOutputs(path: string, out: InferenceOutputs): void {
  mkdirSync(dirname(path), { recursive: true });
  const f = (t: HostTensor) => ({ dtype: "F32" as const, shape: t.shape, data: t.data as Float32Array });
  writeSafetensors(path, { logits: f(out.logits), last_hidden_state: f(out.last_hidden_state) }, { format: "pt" });
}

/** A classifier's answer for one input: the label, its probability and the top alternatives. */
export interface Prediction {
  label: string;
  id: number;
  /** Every class, most probable first. */
  probabilities: { id: number; label: string; probability: number }[];
}

/** Softmax of each row of logits [B, C], labelled and sorted. */
export function predictions(logits: HostTensor, labels: string[]): Prediction[] {
  const [B, C] = logits.shape;
  if (labels.length !== C) throw new ShapeError(`internal: ${labels.length} label names for ${C} logits`);
  const x = logits.data as Float32Array;
  return Array.from({ length: B }, (_, r) => {
    const row = x.subarray(r * C, (r + 1) * C);
    const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
    const e = Array.from(row, (v) => Math.exp(v - max));
    const z = e.reduce((a, b) => a + b, 0);
    const probabilities = e.map((v, id) => ({ id, label: labels[id], probability: v / z })).sort((a, b) => b.probability - a.probability || a.id - b.id);
    return { label: probabilities[0].label, id: probabilities[0].id, probabilities };
  });
}

/** A token classifier's answer for one token: the token, its label and the label's probability. */
export interface TokenTag {
  token: string;
  label: string;
  id: number;
  probability: number;
}

/**
 * A token classifier's tag of every real token (not padding, not special tokens) of each row:
 * logits [B, T, C] over the ids the tokenizer of `model` gave.
 */
export function tokenTags(model: LoadedModel, logits: HostTensor, inputs: Record<string, HostTensor>, labels: string[]): TokenTag[][] {
  const [B, T, C] = logits.shape;
  if (labels.length !== C) throw new ShapeError(`internal: ${labels.length} label names for ${C} logits`);
  const tok = TextTokenizer.fromDir(model.dir);
  const ids = inputs.input_ids.data as BigInt64Array;
  const mask = inputs.attention_mask?.data as BigInt64Array | undefined;
  const rows = predictions({ dtype: "float32", shape: [B * T, C], data: logits.data }, labels);
  return Array.from({ length: B }, (_, r) =>
    Array.from({ length: T }, (_, t) => r * T + t).flatMap((i) => {
      const token = mask?.[i] === 0n ? "" : tok.decode([Number(ids[i])]);
      return token ? [{ token, label: rows[i].label, id: rows[i].id, probability: rows[i].probabilities[0].probability }] : [];
    }),
  );
}

/** Read a text argument that names a file (`@path`) or is the text itself. */
export function textArg(s: string): string {
  return s.startsWith("@") && existsSync(s.slice(1)) ? readFileSync(s.slice(1), "utf8").trim() : s;
}

// ---------------------------------------------------------------------------------------------
// evaluation on a data split (`tenslora eval`)

/** How `evaluateTrained` reads and batches the evaluation data. */
export interface EvalOptions {
  data: string;
  format?: DataFormat;
  /** Seed of the train/test split for layouts without one (use the run's seed). */
  seed?: number;
  evalData?: string;
  textColumn?: string;
  textPairColumn?: string;
  labelColumn?: string;
  /** The run's --num-labels (integer table labels in [0, numLabels)). */
  numLabels?: number;
  maxLength?: number;
  batchSize?: number;
  /** "all": every example of the data, train and test splits together. */
  split?: EvalSplit;
  threads?: number;
  runtime: Runtime;
  /** Problems in the data that do not stop evaluation (skipped examples). */
  warn?: (s: string) => void;
}

export type { EvalResult, LmEvalResult, TokenEvalResult };

/** What `eval` reports for a model of any task: its task's result (evalReport). */
export type AnyEvalResult = EvalResult | LmEvalResult | TokenEvalResult;

/** Metrics of a trained model on a split of `--data` (the same seeded split `train` used). */
export async function evaluateTrained(tm: TrainedModel, o: EvalOptions & { truncation?: boolean; packing?: boolean }): Promise<AnyEvalResult> {
  const split = evalSplit(o.split);
  if (taskOf(tm.model.family.task).dataKind === "lm") {
    const { data } = lmDataFor(tm.model, {
      data: o.data,
      evalData: o.evalData,
      maxLength: o.maxLength ?? 512,
      truncation: o.truncation ?? true,
      packing: o.packing ?? false,
      seed: o.seed ?? 0,
      warn: o.warn,
    });
    return evaluateTaskData(tm, data, { ...o, split });
  }
  if (o.format && !(DATA_FORMATS as readonly string[]).includes(o.format))
    throw new ConfigError(`unknown --data-format "${o.format}"; valid: ${DATA_FORMATS.join(", ")}`);
  const warn = o.warn ?? console.warn;
  const ds = await openDataset(o.data, {
    format: o.format,
    seed: o.seed ?? 0,
    testPath: o.evalData,
    textColumn: o.textColumn,
    textPairColumn: o.textPairColumn,
    labelColumn: o.labelColumn,
    numLabels: o.numLabels,
    modelLabels: tm.labels,
    warn,
  });
  const classNames = ds.split.train.classNames;
  if (classNames.length !== tm.labels.length) {
    throw new ConfigError(
      `the data has ${classNames.length} classes (${classNames.join(", ")}) but the model's head has ${tm.labels.length} (${tm.labels.join(", ")}); ` +
        `evaluate with the adapter trained on this data`,
    );
  }
  if (!tm.labels.every((l, i) => l === classNames[i] || l === `LABEL_${i}`)) {
    warn(`the head's labels (${tm.labels.join(", ")}) differ from the data's classes (${classNames.join(", ")}); classes are matched by index`);
  }
  const data = taskDataFor(tm.model, ds, { maxLength: o.maxLength ?? 512 });
  return evaluateTaskData(tm, data, { ...o, split, warn });
}

const evalSplit = (split: string | undefined): EvalSplit => {
  const s = split ?? "test";
  if (s !== "test" && s !== "train" && s !== "all") throw new ConfigError(`--split must be "test", "train" or "all", got "${s}"`);
  return s;
};

/** Metrics of a trained model on a split of task data (an embedded benchmark's, or a data set's), as its task reports them. */
export async function evaluateTaskData(
  tm: TrainedModel,
  data: TaskData,
  o: Pick<EvalOptions, "split" | "batchSize" | "threads" | "runtime" | "warn">,
): Promise<AnyEvalResult> {
  const split = evalSplit(o.split);
  const task = taskOf(tm.model.family.task);
  if (!task.evalReport) throw new ConfigError(`eval does not score ${task.name} models; evaluate a model fine-tuned for another task`);
  const report = task.evalReport;
  const [scored, from] = split === "all" ? [wholeAsTest(data), "test" as const] : [data, split];
  const B = Math.max(1, Math.min(o.batchSize ?? report.batchSize, scored.size(from)));
  const ev = await withEvalGraph(tm, data.seqLen, B, o, (graph, b, feeds) => task.evaluate(scored, from, graph, b, feeds, task.metrics[0]));
  const skipped = (ev.metrics.skippedImages as string[] | undefined) ?? [];
  if (skipped.length)
    (o.warn ?? console.warn)(
      `${skipped.length} image(s) of the ${split} split no longer decode and are left out of the metrics: ${skipped.slice(0, 5).join(", ")}`,
    );
  return report.result(ev, split, data.classNames ?? []);
}

/** The table `eval` prints for `result`, an evaluation of `tm`. */
export const evalTable = (tm: TrainedModel, result: AnyEvalResult): string => taskOf(tm.model.family.task).evalReport!.table(result);

/** Run `f` with a compiled logits-only graph of the trained model for batch B. */
async function withEvalGraph<R>(
  tm: TrainedModel,
  seqLen: number | undefined,
  B: number,
  o: { runtime: Runtime; threads?: number },
  f: (graph: CompiledGraph, B: number, feeds: (inputs: Record<string, HostTensor>) => Record<string, HostTensor>) => Promise<R>,
): Promise<R> {
  const { model, adapter } = tm;
  const built = buildModelGraph({ model, adapter, batch: B, seqLen, trainable: "none" });
  const compiler = o.runtime.compiler();
  try {
    const graph = await compiler.compile(built.graph, { threads: o.threads, outputs: ["logits"] });
    try {
      return await f(graph, B, (inputs) => model.family.feeds(model.config, inputs));
    } finally {
      graph.dispose();
    }
  } finally {
    compiler.dispose();
  }
}
