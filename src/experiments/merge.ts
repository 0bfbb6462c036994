/**
 * The library side of `tenslora merge`: fold a trained adapter into the frozen weights and write a
 * standard HuggingFace folder (config.json with the run's labels, model.safetensors, the
 * tokenizer / preprocessor files), and optionally `onnx/model.onnx`, an inference graph that
 * onnxruntime and transformers.js load as it is: inputs by HF names with free `batch_size` (and
 * `sequence_length`) dims from the IR's symbolic shapes, output `logits`, weights in
 * `onnx/model.onnx_data` past the protobuf limit, and config.json's "transformers.js_config"
 * saying so. Inputs the model derives (RoBERTa's position ids, its token types when the checkpoint
 * has one type) become nodes, so the graph takes exactly what a tokenizer gives. Decoders export
 * their KV-cache step graph, the layout transformers.js and ONNX Runtime GenAI drive. */
import { copyFileSync, existsSync, mkdirSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { mergeAdapter } from "../adapters/merge.ts";
import { ConfigError, internal } from "../errors.ts";
import { takeOutFolder } from "../io/out-folder.ts";
import { buildModelGraph } from "../pipeline/build.ts";
import { BATCH, PAST, SEQ } from "../models/dims.ts";
import type { LoadedModel } from "../models/load.ts";
import type { Task } from "../models/types.ts";
import type { WeightMap } from "../nn/params.ts";
import { exportModel } from "../onnx/export.ts";
import { WeightStore } from "../onnx/weight-store.ts";
import { type GraphProto, type ModelProto, ONNX_INLINE_LIMIT, graphOf, inlineWeights, writeModelFile } from "../onnx/model-file.ts";
import { type NodeProto, int64Tensor, node, onnx } from "../onnx/proto.ts";
import { type Quantization, quantizeDynamicInt8 } from "../onnx/quantize.ts";
import { saveModelFolder } from "../train/artifacts.ts";
import { type BaseDType, floatWeights } from "../models/quantize-base.ts";
import { loadTrainedModel } from "./infer.ts";
import { taskOf } from "../tasks/index.ts";

/** Files of a HF folder that describe its inputs, copied beside the merged weights. */
export const PROCESSOR_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "vocab.json",
  "vocab.txt",
  "merges.txt",
  "added_tokens.json",
  "sentencepiece.bpe.model",
  "preprocessor_config.json",
];

/** Where transformers.js looks for a model's ONNX files, and their names (fp32, q8, external data). */
export const ONNX_DIR = "onnx";
/** File name of the ONNX export in a merged folder's `onnx/` (transformers.js looks for it there). */
export const ONNX_FILE = "model.onnx";
/** File name of the 8-bit quantised ONNX export (transformers.js's `dtype: "q8"`). */
export const ONNX_QUANTIZED_FILE = "model_quantized.onnx";
/** File name of the ONNX export's external weights (used past 2 GB). */
export const ONNX_DATA_FILE = "model.onnx_data";

/** How to merge an adapter into its base model and what to write beside the weights. */
export interface MergeOptions extends OnnxExportOptions {
  /** Also write onnx/model.onnx (and with `quantize`, onnx/model_quantized.onnx). */
  onnx?: boolean;
  /** Replace what `outDir` holds (a non-empty folder is refused otherwise). */
  overwrite?: boolean;
  /**
   * The base the adapter was trained on: with f16 / int8 / int4 the update is added to the dequantized
   * weights it was trained against, and the folder holds them in float32.
   */
  baseDtype?: BaseDType;
}

/** What merging wrote: the folder and its files. */
export interface MergeResult {
  dir: string;
  files: string[];
  task: Task;
  /** Class names of a classifier's head. */
  labels: string[];
  /** Adapted projections folded into their weights (0 for a head or a full model). */
  mergedProjections: number;
  /** Weight matrices stored as int8 in onnx/model_quantized.onnx (with quantize). */
  quantizedMatrices?: number;
  /** The base merged onto; f16 / int8 / int4 were dequantized to float32 first. */
  baseDtype: BaseDType;
}

/** The model's weights, a quantized base's dequantized, with the adapter's update folded in. */
export function mergedWeights(model: LoadedModel, adapter?: AdapterSet): WeightMap {
  const weights = floatWeights(model);
  return adapter ? mergeAdapter(weights, adapter) : weights;
}

/** `tenslora merge`: a standard HF folder (and model.onnx) in `outDir` from a model and what a run saved. */
export async function mergeToFolder(modelDir: string, adapterDir: string | undefined, outDir: string, opts: MergeOptions = {}): Promise<MergeResult> {
  if (existsSync(outDir) && realpathSync(outDir) === realpathSync(modelDir)) {
    throw new ConfigError(`--out ${outDir} is the model folder; write the merged model to a new folder`);
  }
  if (adapterDir && existsSync(outDir) && resolve(outDir) === resolve(adapterDir))
    throw new ConfigError(`--out ${outDir} is the adapter folder; write the merged model to a new folder`);
  const baseDtype = opts.baseDtype ?? "f32";
  const tm = loadTrainedModel(modelDir, adapterDir, { baseDtype });
  const weights = mergedWeights(tm.model, tm.adapter);
  if (opts.quantize && !opts.onnx) throw new ConfigError(`--quantize ${opts.quantize} quantizes the ONNX export; add --onnx`);
  takeOutFolder(outDir, opts.overwrite);
  mkdirSync(outDir, { recursive: true });
  const files = ["config.json", "model.safetensors"];
  for (const f of PROCESSOR_FILES) {
    if (existsSync(join(modelDir, f))) {
      copyFileSync(join(modelDir, f), join(outDir, f));
      files.push(f);
    }
  }
  const config = { ...tm.model.rawConfig };
  let quantizedMatrices: number | undefined;
  if (opts.onnx) {
    const ex = exportOnnx({ ...tm.model, weights, quantized: undefined, baseDtype: undefined }, outDir, opts);
    files.push(...ex.files);
    config["transformers.js_config"] = ex.transformersJsConfig;
    quantizedMatrices = ex.quantizedMatrices;
  }
  // config.json last: the folder looks like a model only once everything it points at is written
  saveModelFolder(outDir, config, weights);
  const mergedProjections = tm.adapter ? tm.adapter.groups.reduce((n, g) => n + g.grid.flat().length, 0) : 0;
  return { dir: outDir, files, task: tm.model.family.task, labels: tm.labels, mergedProjections, quantizedMatrices, baseDtype };
}

// ---------------------------------------------------------------------------------------------
// ONNX export with dynamic dims

/** The inputs the family derives in an export (exportDerivedInputs): nodes that produce them from input_ids. */
function deriveInputs(model: LoadedModel, g: GraphProto): void {
  const nodes: NodeProto[] = [];
  const drop = new Set<string>();
  const has = (n: string) => g.input.some((v) => v.name === n);
  for (const d of model.family.exportDerivedInputs?.(model.config) ?? []) {
    if (!has(d.name)) continue;
    if (d.rule === "pad-offset") {
      // HF create_position_ids_from_input_ids: cumsum of the non-pad mask, offset by the pad id; pads keep it
      g.initializer.push(int64Tensor("_pos_pad", [d.padTokenId], true), int64Tensor("_pos_axis", [1], true));
      nodes.push(
        node("Equal", ["input_ids", "_pos_pad"], ["_pos_eq"]),
        node("Not", ["_pos_eq"], ["_pos_ne"]),
        node("Cast", ["_pos_ne"], ["_pos_mask"], { to: onnx.TensorProto.DataType.INT64 }),
        node("CumSum", ["_pos_mask", "_pos_axis"], ["_pos_cum"]),
        node("Mul", ["_pos_cum", "_pos_mask"], ["_pos_kept"]),
        node("Add", ["_pos_kept", "_pos_pad"], [d.name]),
      );
    } else {
      g.initializer.push(int64Tensor("_tt_zero", [0], true));
      nodes.push(node("Mul", ["input_ids", "_tt_zero"], [d.name]));
    }
    drop.add(d.name);
  }
  const hf = new Set([...model.family.inputNames.required, ...model.family.inputNames.optional]);
  const unknown = g.input.filter((v) => !drop.has(v.name!) && !hf.has(v.name!)).map((v) => v.name);
  if (unknown.length) internal(`ONNX export: graph inputs ${unknown.join(", ")} are not HF inputs`);
  g.input = g.input.filter((v) => !drop.has(v.name!));
  g.node = [...nodes, ...g.node];
}

export type { Quantization } from "../onnx/quantize.ts";

/** Options of the ONNX export of a merged model: opset, quantisation, symbolic dims. */
export interface OnnxExportOptions {
  /** Total initializer bytes above which weights go to `<file>_data` (default: just under 2 GiB). */
  inlineLimitBytes?: number;
  /** Also write onnx/model_quantized.onnx with int8 weight matrices (transformers.js dtype "q8"). */
  quantize?: Quantization;
}

export interface OnnxExport {
  /** Written files, relative to the output folder. */
  files: string[];
  /** What config.json's "transformers.js_config" must say for transformers.js to load the files. */
  transformersJsConfig: Record<string, unknown>;
  /** Weight matrices stored as int8 in the quantized model. */
  quantizedMatrices?: number;
}

/**
 * Write `outDir/onnx/model.onnx` for `model` (weights as they are: merge first), the file layout
 * transformers.js and HF's ONNX exports use: inputs by HF names with dims `batch_size` (and
 * `sequence_length`) free, output `logits`. A decoder's graph is one generation step with a KV
 * cache (input_ids, attention_mask, position_ids, past_key_values.N.key/value → logits,
 * present.N.key/value). Config.json is the caller's (see transformersJsConfig).
 */
export function exportOnnx(model: LoadedModel, outDir: string, opts: OnnxExportOptions = {}): OnnxExport {
  const task = taskOf(model.family.task);
  const lm = task.generates;
  const built = buildModelGraph({
    model,
    batch: BATCH,
    seqLen: task.input === "image" ? undefined : SEQ,
    past: lm ? PAST : undefined,
    trainable: "none",
  });
  const outputs = [...built.graph.outputs.keys()];
  const store = new WeightStore();
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(exportModel(built.graph, { outputs, store }));
    inlineWeights(graphOf(proto), store);
  } finally {
    store.dispose();
  }
  proto.producerName = "tenslora";
  const ins = graphOf(proto).input.map((v) => v.name);
  proto.docString = lm
    ? `${model.family.modelType} causal LM merged by tenslora, one generation step with a KV cache: inputs ${ins.join(", ")}; outputs ${outputs.join(", ")}`
    : `${model.family.modelType} ${model.family.task} model merged by tenslora; inputs ${model.family.inputNames.required.join(", ")}; output logits [${built.graph.outputs.get("logits")!.shape.join(", ")}]`;
  // a decoder's step graph already takes what transformers.js feeds (its position ids included)
  if (!lm) deriveInputs(model, graphOf(proto));
  const dir = join(outDir, ONNX_DIR);
  mkdirSync(dir, { recursive: true });
  const limit = opts.inlineLimitBytes ?? ONNX_INLINE_LIMIT;
  const written = writeModelFile(proto, dir, ONNX_FILE, limit);
  let quantizedMatrices: number | undefined;
  if (opts.quantize === "q8") {
    quantizedMatrices = quantizeDynamicInt8(proto);
    written.push(...writeModelFile(proto, dir, ONNX_QUANTIZED_FILE, limit));
  }
  const external = Object.fromEntries(written.filter((f) => f.endsWith("_data")).map((f) => [f.slice(0, -"_data".length), 1]));
  const transformersJsConfig: Record<string, unknown> = opts.quantize ? {} : { dtype: "fp32" };
  if (Object.keys(external).length) transformersJsConfig.use_external_data_format = external;
  return { files: written.map((f) => `${ONNX_DIR}/${f}`), transformersJsConfig, quantizedMatrices };
}
