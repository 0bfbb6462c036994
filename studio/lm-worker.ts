/**
 * The decoder page's worker: reads a model folder (from the page's server or the user's files),
 * quantizes each linear weight as it decodes it, so the float32 model never exists whole, and
 * fine-tunes it on onnxruntime-web's WebAssembly backend with one session alive at a time. The
 * model stays loaded for the next run with the same files and base dtype.
 */
import {
  FormatError,
  type LoadedModel,
  LmTokens,
  TextTokenizer,
  type Trained,
  configureWeb,
  modelFromTensors,
  parseBaseDType,
  parseSafetensors,
  toFloat32,
  trainedFiles,
  webRuntime,
} from "../src/browser.ts";
import type { LazyCheckpointTensor } from "../src/io/checkpoint.ts";
import type { FromLmWorker, LmTrainRequest, ModelSource, ToLmWorker } from "./lm-protocol.ts";
import { type LmExamples, lmFineTune, textExamples } from "./lm-run.ts";
import { workerLoop } from "./worker-loop.ts";

const post = (m: FromLmWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);
const loop = workerLoop<ToLmWorker>({ isRun: (m) => m.type === "train", handle, error: (message) => post({ type: "error", message }) });

/** A file of the model folder: a fetch Response and a chosen File both read as text and as bytes. */
interface Readable {
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

interface Folder {
  get(name: string): Promise<Readable | undefined>;
  /** Names the folder in messages. */
  where: string;
  /** Tells one folder from another: the URL, or the chosen files' names, sizes and dates. */
  key: string;
}

function folderOf(src: ModelSource): Folder {
  if (src.kind === "url") {
    return {
      get: async (f) => {
        const r = await fetch(src.url + f);
        return r.ok ? r : undefined;
      },
      where: src.url,
      key: src.url,
    };
  }
  // files chosen from a folder carry its path ("SmolLM2-135M/config.json"); the names inside it are what count
  const byName = new Map(src.files.map((f) => [f.name, f]));
  const folder = src.files[0]?.webkitRelativePath.split("/")[0];
  return {
    get: async (f) => byName.get(f),
    where: folder || "the chosen files",
    key: src.files.map((f) => `${f.webkitRelativePath || f.name}:${f.size}:${f.lastModified}`).join("|"),
  };
}

async function readJson(folder: Folder, name: string): Promise<Record<string, unknown> | undefined> {
  const file = await folder.get(name);
  if (!file) return undefined;
  try {
    return JSON.parse(await file.text()) as Record<string, unknown>;
  } catch (e) {
    throw new FormatError(`${folder.where}: ${name} does not parse as JSON (${(e as Error).message}); choose the model folder's own ${name}`);
  }
}

/** The folder's tensors: model.safetensors, or the shards its model.safetensors.index.json names (read whole, decoded lazily). */
async function readTensors(folder: Folder): Promise<Map<string, LazyCheckpointTensor>> {
  const single = await folder.get("model.safetensors");
  const index = single ? undefined : await readJson(folder, "model.safetensors.index.json");
  if (!single && !index) throw new FormatError(`${folder.where}: neither model.safetensors nor model.safetensors.index.json; choose the model folder's files`);
  const shards = index ? [...new Set(Object.values((index as { weight_map: Record<string, string> }).weight_map))] : ["model.safetensors"];
  const tensors = new Map<string, LazyCheckpointTensor>();
  for (const shard of shards) {
    const bytes = shard === "model.safetensors" && single ? single : await folder.get(shard);
    if (!bytes) throw new FormatError(`${folder.where}: ${shard} (named by model.safetensors.index.json) is missing`);
    const file = parseSafetensors(new Uint8Array(await bytes.arrayBuffer()), `${folder.where} ${shard}`);
    // each tensor decoded to float32 only when its turn comes, quantized, and dropped
    for (const [k, e] of file.tensors) tensors.set(k, { shape: e.shape, dtype: e.dtype, read: () => toFloat32(e, k) });
  }
  return tensors;
}

async function readTokens(folder: Folder): Promise<LmTokens | undefined> {
  const json = await readJson(folder, "tokenizer.json");
  if (!json) return undefined;
  const config = (await readJson(folder, "tokenizer_config.json")) ?? {};
  return new LmTokens(new TextTokenizer(json, config), config, `${folder.where} tokenizer_config.json`);
}

interface Loaded {
  key: string;
  model: LoadedModel;
  tokens?: LmTokens;
}

let loaded: Loaded | undefined;
let trained: Trained | undefined;

async function load(src: ModelSource, baseDtype: string): Promise<{ model: Loaded; reused: boolean }> {
  const folder = folderOf(src);
  const key = `${folder.key} ${baseDtype}`;
  if (loaded?.key === key) return { model: loaded, reused: true };
  loaded = undefined; // the previous model goes before the next one arrives
  trained = undefined;
  const dtype = parseBaseDType(baseDtype);
  const config = await readJson(folder, "config.json");
  if (!config) throw new FormatError(`${folder.where}: config.json is missing; choose config.json, model.safetensors and tokenizer.json of a model folder`);
  post({ type: "status", text: "reading and quantizing the weights…" });
  // the adapter's base_model_name_or_path: the Hub id transformers records in config.json, else the folder
  const dir = typeof config._name_or_path === "string" && config._name_or_path ? config._name_or_path : folder.where;
  const where = { dir, configPath: `${folder.where} config.json`, weightsPath: folder.where };
  const model = modelFromTensors(config, await readTensors(folder), where, { baseDtype: dtype });
  loaded = { key, model, tokens: await readTokens(folder) };
  return { model: loaded, reused: false };
}

async function trainRun(m: LmTrainRequest): Promise<void> {
  const t0 = performance.now();
  const { model: l, reused } = await load(m.model, m.baseDtype);
  const loadSeconds = (performance.now() - t0) / 1000;
  let params = 0;
  for (const t of l.model.weights.values()) params += t.data.length;
  for (const q of l.model.quantized?.values() ?? []) params += q.rows * q.cols;
  post({ type: "loaded", name: l.model.config.modelType, params, loadSeconds, reused });
  let examples: LmExamples | undefined;
  if (m.data.kind === "text") {
    if (!l.tokens) throw new FormatError("training on text needs the model's tokenizer.json (choose it with the model files), or pick synthetic token cycles");
    examples = textExamples(l.tokens, l.model.config, m.data.name, m.data.text, m.options.seqLen, m.options.seed);
  }
  trained = undefined;
  post({ type: "status", text: "compiling the training graph…" });
  const { trained: t, ...result } = await lmFineTune(l.model, m.options, webRuntime("wasm", { exclusiveSessions: true }), {
    examples,
    shouldStop: loop.stopRequested,
    onEvent: (e) => {
      if (e.type === "step") post({ type: "step", step: e.step, total: e.total, loss: e.loss });
      if (e.type === "eval") post({ type: "eval", step: e.step, loss: Number(e.metrics.loss) });
    },
  });
  trained = t;
  post({ type: "done", result, loadSeconds });
}

async function handle(m: ToLmWorker): Promise<void> {
  switch (m.type) {
    case "init":
      configureWeb({ wasmPaths: `${m.base}ort/`, threads: m.threads });
      return;
    case "train":
      return trainRun(m);
    case "download": {
      if (!loaded || !trained) throw new FormatError("no trained adapter yet: train first (a stopped run keeps the adapter of its latest evaluation)");
      const files = [...trainedFiles(loaded.model, trained)].map(([name, bytes]) => ({ name, bytes }));
      post(
        { type: "files", files },
        files.map((f) => f.bytes.buffer),
      );
      return;
    }
  }
}
