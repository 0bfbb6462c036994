/**
 * The library side of `tenslora merge`: fold a trained adapter into the frozen weights and write a
 * standard HuggingFace folder (config.json with the run's labels, model.safetensors, the
 * tokenizer / preprocessor files), and optionally `model.onnx`, an inference graph that
 * onnxruntime runs on its own: inputs by HF names with dynamic batch (and sequence) dims, output
 * `logits`, weights in an external `model.onnx_data` file when they exceed the protobuf limit.
 *
 * Dynamic dims without symbolic shapes in the IR: the graph is exported at a few concrete sizes
 * and compared. Structure and weights must be identical; the int64 shape constants that differ
 * are fitted as c0 + cB·B + cT·T + cBT·B·T (exact, checked at one more size) and computed in the
 * graph from Shape(input). Inputs the model derives (RoBERTa's position ids, its token types when
 * the checkpoint has one type) become nodes too, so the graph takes exactly what a tokenizer gives.
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readSync, realpathSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { mergeAdapter } from "../adapters/merge.ts";
import { ConfigError, internal } from "../errors.ts";
import { writeFileAtomic } from "../io/safetensors.ts";
import { buildModelGraph } from "../models/build.ts";
import type { LoadedModel } from "../models/load.ts";
import type { WeightMap } from "../nn/params.ts";
import { WeightStore, exportModel } from "../onnx/export.ts";
import { type NodeProto, int64Tensor, node, onnx } from "../onnx/proto.ts";
import { saveModelFolder } from "../train/artifacts.ts";
import { loadTrainedModel } from "./infer.ts";

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

export const ONNX_FILE = "model.onnx";
export const ONNX_DATA_FILE = "model.onnx_data";
/** ONNX files are protobufs, which cannot exceed 2 GiB; past this total the weights go external. */
export const ONNX_INLINE_LIMIT = 2 ** 31 - 2 ** 26;
/** Initializers at least this large go to the external file when one is written. */
const EXTERNAL_MIN_BYTES = 1024;
const EXTERNAL_ALIGN = 4096;

export interface MergeOptions {
  /** Also write model.onnx. */
  onnx?: boolean;
  /** Total initializer bytes above which weights go to model.onnx_data (default: just under 2 GiB). */
  inlineLimitBytes?: number;
}

export interface MergeResult {
  dir: string;
  files: string[];
  labels: string[];
  /** Adapted projections folded into their weights (0 for a head or a full model). */
  mergedProjections: number;
}

/** The model's weights with the adapter's update folded in. */
export function mergedWeights(model: LoadedModel, adapter?: AdapterSet): WeightMap {
  return adapter ? mergeAdapter(model.weights, adapter) : model.weights;
}

/** `tenslora merge`: a standard HF folder (and model.onnx) in `outDir` from a model and what a run saved. */
export async function mergeToFolder(modelDir: string, adapterDir: string, outDir: string, opts: MergeOptions = {}): Promise<MergeResult> {
  if (existsSync(outDir) && realpathSync(outDir) === realpathSync(modelDir)) {
    throw new ConfigError(`--out ${outDir} is the model folder; write the merged model to a new folder`);
  }
  if (existsSync(outDir) && resolve(outDir) === resolve(adapterDir)) throw new ConfigError(`--out ${outDir} is the adapter folder; write the merged model to a new folder`);
  const tm = loadTrainedModel(modelDir, adapterDir);
  const weights = mergedWeights(tm.model, tm.adapter);
  mkdirSync(outDir, { recursive: true });
  const files = ["config.json", "model.safetensors"];
  saveModelFolder(outDir, tm.model.rawConfig, weights);
  for (const f of PROCESSOR_FILES) {
    if (existsSync(join(modelDir, f))) {
      copyFileSync(join(modelDir, f), join(outDir, f));
      files.push(f);
    }
  }
  if (opts.onnx) files.push(...exportOnnx({ ...tm.model, weights }, outDir, { inlineLimitBytes: opts.inlineLimitBytes }));
  const mergedProjections = tm.adapter ? tm.adapter.groups.reduce((n, g) => n + g.grid.flat().length, 0) : 0;
  return { dir: outDir, files, labels: tm.labels, mergedProjections };
}

// ---------------------------------------------------------------------------------------------
// ONNX export with dynamic dims

type Dims = { B: number; T: number };
type ModelProto = InstanceType<typeof onnx.ModelProto>;
type RawGraph = NonNullable<ModelProto["graph"]>;
type Tensor = NonNullable<RawGraph["initializer"]>[number];
type ValueInfo = NonNullable<RawGraph["input"]>[number];
/** The generated types mark every field optional; exported graphs have them all. */
type GraphProto = { node: NodeProto[]; initializer: Tensor[]; input: ValueInfo[]; output: ValueInfo[] };
const graphOf = (p: ModelProto) => p.graph as unknown as GraphProto;

const BATCH = "batch_size";
const SEQ = "sequence_length";

function exportAt(model: LoadedModel, d: Dims, text: boolean, store: WeightStore): ModelProto {
  const built = buildModelGraph({ model, batch: d.B, seqLen: text ? d.T : undefined, trainable: "none" });
  return onnx.ModelProto.decode(exportModel(built.graph, { outputs: ["logits"], store }));
}

const int64Values = (t: Tensor): bigint[] => {
  const raw = t.rawData ?? new Uint8Array();
  const view = new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  return [...view];
};

const bytesEqual = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** c0 + cB·B + cT·T + cBT·B·T through four samples, checked at a fifth. */
interface Affine {
  c0: bigint;
  cB: bigint;
  cT: bigint;
  cBT: bigint;
}

const SAMPLES: Dims[] = [
  { B: 2, T: 5 },
  { B: 3, T: 5 },
  { B: 2, T: 7 },
  { B: 3, T: 7 },
];
const CHECK: Dims = { B: 5, T: 11 };

function fit(v: bigint[], text: boolean, what: string): Affine {
  // vision graphs vary B only: samples 0 and 1
  const cBT = text ? (v[3] - v[2] - v[1] + v[0]) / 2n : 0n; // Δ_B Δ_T v = cBT · 1 · 2
  const cB = v[1] - v[0] - cBT * 5n;
  const cT = text ? (v[2] - v[0]) / 2n - cBT * 2n : 0n;
  const c0 = v[0] - cB * 2n - cT * 5n - cBT * 10n;
  const f = { c0, cB, cT, cBT };
  SAMPLES.forEach((s, i) => {
    if ((text || i < 2) && evalAffine(f, s) !== v[i]) internal(`ONNX export: ${what} is not affine in batch/sequence (${v.join(", ")})`);
  });
  return f;
}

const evalAffine = (f: Affine, d: Dims) => f.c0 + f.cB * BigInt(d.B) + f.cT * BigInt(d.T) + f.cBT * BigInt(d.B * d.T);

/**
 * One ModelProto whose int64 shape constants follow the input's batch (and sequence) size.
 * `protos` are exports at SAMPLES (vision: the first two) and `check` at CHECK.
 */
function generalise(protos: ModelProto[], check: ModelProto, text: boolean, lead: string): ModelProto {
  const base = protos[0];
  const g = graphOf(base);
  const graphs = protos.map(graphOf);
  const cg = graphOf(check);
  // the structure must not depend on the sizes
  for (const [i, other] of [...graphs.slice(1), cg].entries()) {
    const same =
      other.node.length === g.node.length &&
      other.node.every((n, j) => bytesEqual(onnx.NodeProto.encode(n).finish(), onnx.NodeProto.encode(g.node[j]).finish())) &&
      other.initializer.length === g.initializer.length &&
      other.initializer.every((t, j) => t.name === g.initializer[j].name);
    if (!same) internal(`ONNX export: the graph's structure changes with the batch/sequence size (sample ${i + 1})`);
  }
  const newNodes: NodeProto[] = [];
  const dimNodes = new Map<string, string>();
  const dimScalar = (which: "B" | "T" | "BT"): string => {
    const have = dimNodes.get(which);
    if (have) return have;
    let name: string;
    if (which === "BT") {
      name = "_dyn_BT";
      newNodes.push(node("Mul", [dimScalar("B"), dimScalar("T")], [name]));
    } else {
      if (!dimNodes.has("shape")) {
        newNodes.push(node("Shape", [lead], ["_dyn_shape"]));
        dimNodes.set("shape", "_dyn_shape");
      }
      const idx = `_dyn_idx_${which}`;
      g.initializer.push(int64Tensor(idx, [which === "B" ? 0 : 1], true));
      name = `_dyn_${which}`;
      newNodes.push(node("Gather", ["_dyn_shape", idx], [name], { axis: 0 }));
    }
    dimNodes.set(which, name);
    return name;
  };
  const keep: Tensor[] = [];
  const n0 = g.initializer.length;
  for (let j = 0; j < n0; j++) {
    const t = g.initializer[j];
    const variants = graphs.map((x) => x.initializer[j]);
    const raws = variants.map((x) => x.rawData ?? new Uint8Array());
    const differs = variants.some((x, i) => !bytesEqual(raws[i], raws[0]) || (x.externalData ?? []).map((e) => e.value).join() !== (t.externalData ?? []).map((e) => e.value).join());
    const checkDiffers = !bytesEqual(cg.initializer[j].rawData ?? new Uint8Array(), raws[0]);
    if (!differs && !checkDiffers) {
      keep.push(t);
      continue;
    }
    if (t.dataType !== onnx.TensorProto.DataType.INT64 || (t.dims ?? []).length > 1) internal(`ONNX export: constant ${t.name} (type ${t.dataType}, dims [${t.dims}]) depends on the batch/sequence size`);
    const values = variants.map(int64Values);
    const checkValues = int64Values(cg.initializer[j]);
    const fits = values[0].map((_, e) => fit(values.map((v) => v[e]), text, `${t.name}[${e}]`));
    fits.forEach((f, e) => {
      if (evalAffine(f, CHECK) !== checkValues[e]) internal(`ONNX export: ${t.name}[${e}] does not follow the fitted size rule at the check size`);
    });
    // t = C0 + CB·B + CT·T + CBT·(B·T), elementwise over the constant's elements
    const dims = (t.dims ?? []).map(Number);
    const vec = (name: string, k: keyof Affine) => {
      const tp = int64Tensor(name, fits.map((f) => Number(f[k])), dims.length === 0);
      keep.push(tp);
      return name;
    };
    let acc = vec(`${t.name}_c0`, "c0");
    for (const [k, d] of [["cB", "B"], ["cT", "T"], ["cBT", "BT"]] as const) {
      if (fits.every((f) => f[k] === 0n)) continue;
      const prod = `${t.name}_${k}x`;
      newNodes.push(node("Mul", [vec(`${t.name}_${k}`, k), dimScalar(d)], [prod]));
      const sum = `${t.name}_acc_${k}`;
      newNodes.push(node("Add", [acc, prod], [sum]));
      acc = sum;
    }
    newNodes.push(node("Identity", [acc], [t.name!]));
  }
  g.initializer = [...keep, ...g.initializer.slice(n0)];
  g.node = [...newNodes, ...g.node];
  // value infos: dims that follow B or T get names
  const dimName = (values: number[]) => {
    if (values.every((v, i) => v === SAMPLES[i].B)) return BATCH;
    if (text && values.every((v, i) => v === SAMPLES[i].T)) return SEQ;
    if (values.every((v) => v === values[0])) return undefined;
    return internal(`ONNX export: an input/output dim varies as ${values.join(", ")}`);
  };
  const count = text ? 4 : 2;
  for (const key of ["input", "output"] as const) {
    g[key].forEach((vi, i) => {
      const dims = vi.type!.tensorType!.shape!.dim!;
      dims.forEach((dim, k) => {
        const name = dimName(graphs.slice(0, count).map((x) => Number(x[key][i].type!.tensorType!.shape!.dim![k].dimValue)));
        if (name) {
          dim.dimParam = name;
          dim.dimValue = undefined as never;
        }
      });
    });
  }
  return base;
}

/** Inputs the model computes from others (RoBERTa): nodes that produce them from input_ids. */
function deriveInputs(model: LoadedModel, g: GraphProto): void {
  const cfg = model.config as { padTokenId?: number; typeVocabSize?: number };
  const nodes: NodeProto[] = [];
  const drop = new Set<string>();
  const has = (n: string) => g.input.some((v) => v.name === n);
  if (has("position_ids")) {
    // HF create_position_ids_from_input_ids: cumsum of the non-pad mask, offset by the pad id; pads keep it
    const pad = cfg.padTokenId ?? 1;
    g.initializer.push(int64Tensor("_pos_pad", [pad], true), int64Tensor("_pos_axis", [1], true));
    nodes.push(
      node("Equal", ["input_ids", "_pos_pad"], ["_pos_eq"]),
      node("Not", ["_pos_eq"], ["_pos_ne"]),
      node("Cast", ["_pos_ne"], ["_pos_mask"], { to: onnx.TensorProto.DataType.INT64 }),
      node("CumSum", ["_pos_mask", "_pos_axis"], ["_pos_cum"]),
      node("Mul", ["_pos_cum", "_pos_mask"], ["_pos_kept"]),
      node("Add", ["_pos_kept", "_pos_pad"], ["position_ids"]),
    );
    drop.add("position_ids");
  }
  if (has("token_type_ids") && (cfg.typeVocabSize ?? 1) <= 1) {
    g.initializer.push(int64Tensor("_tt_zero", [0], true));
    nodes.push(node("Mul", ["input_ids", "_tt_zero"], ["token_type_ids"]));
    drop.add("token_type_ids");
  }
  const hf = new Set([...model.family.inputNames.required, ...model.family.inputNames.optional]);
  const unknown = g.input.filter((v) => !drop.has(v.name!) && !hf.has(v.name!)).map((v) => v.name);
  if (unknown.length) internal(`ONNX export: graph inputs ${unknown.join(", ")} are not HF inputs`);
  g.input = g.input.filter((v) => !drop.has(v.name!));
  g.node = [...nodes, ...g.node];
}

/** Resolve initializer bytes (inline or in the store's file) and write them inline or to model.onnx_data. */
function placeWeights(g: GraphProto, store: WeightStore, outDir: string, inlineLimit: number): string[] {
  const storeFile = join(store.dir, store.file);
  const sizeOf = (t: Tensor) => (t.externalData?.length ? Number(t.externalData.find((e) => e.key === "length")!.value) : (t.rawData?.length ?? 0));
  const total = g.initializer.reduce((a, t) => a + sizeOf(t), 0);
  const external = total > inlineLimit;
  const readStored = (t: Tensor): Uint8Array => {
    const get = (k: string) => Number(t.externalData!.find((e) => e.key === k)!.value);
    const buf = new Uint8Array(get("length"));
    const fd = openSync(storeFile, "r");
    try {
      for (let done = 0; done < buf.length; ) done += readSync(fd, buf, done, Math.min(buf.length - done, 1 << 30), get("offset") + done);
    } finally {
      closeSync(fd);
    }
    return buf;
  };
  const clearExternal = (t: Tensor, raw: Uint8Array) => {
    t.rawData = raw;
    t.externalData = [];
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  };
  if (!external) {
    for (const t of g.initializer) if (t.externalData?.length) clearExternal(t, readStored(t));
    return [];
  }
  const fd = openSync(join(outDir, ONNX_DATA_FILE), "w");
  try {
    let offset = 0;
    for (const t of g.initializer) {
      if (sizeOf(t) < EXTERNAL_MIN_BYTES) {
        if (t.externalData?.length) clearExternal(t, readStored(t));
        continue;
      }
      const bytes = t.externalData?.length ? readStored(t) : t.rawData!;
      offset = Math.ceil(offset / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), offset + done);
      t.rawData = new Uint8Array();
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [
        { key: "location", value: ONNX_DATA_FILE },
        { key: "offset", value: String(offset) },
        { key: "length", value: String(bytes.length) },
      ].map((e) => onnx.StringStringEntryProto.create(e));
      offset += bytes.length;
    }
  } finally {
    closeSync(fd);
  }
  return [ONNX_DATA_FILE];
}

/**
 * Write `outDir/model.onnx` for `model` (weights as they are: merge first): inputs by HF names with
 * dynamic batch/sequence dims, output `logits`. Returns the files written.
 */
export function exportOnnx(model: LoadedModel, outDir: string, opts: { inlineLimitBytes?: number } = {}): string[] {
  const text = model.family.task === "text-classification";
  const lead = model.family.inputNames.required[0];
  const store = new WeightStore();
  try {
    const samples = (text ? SAMPLES : SAMPLES.slice(0, 2)).map((d) => exportAt(model, d, text, store));
    const proto = generalise(samples, exportAt(model, CHECK, text, store), text, lead);
    proto.producerName = "tenslora";
    proto.docString = `${model.family.modelType} sequence/image classifier merged by tenslora; inputs ${model.family.inputNames.required.join(", ")}; output logits [${BATCH}, ${model.config.numLabels}]`;
    const g = graphOf(proto);
    deriveInputs(model, g);
    mkdirSync(outDir, { recursive: true });
    const extra = placeWeights(g, store, outDir, opts.inlineLimitBytes ?? ONNX_INLINE_LIMIT);
    writeFileAtomic(join(outDir, ONNX_FILE), onnx.ModelProto.encode(proto).finish());
    return [ONNX_FILE, ...extra];
  } finally {
    store.dispose();
  }
}
