/**
 * The studio's training worker: the library's browser build on onnxruntime-web, so the page
 * stays responsive while steps run. One run at a time; `stop` checkpoints the run in memory and
 * `resume` continues it (then the runs still queued).
 */
import {
  ADAPTER_CONFIG,
  DEFAULTS,
  EMBEDDED_CONFIG,
  EMBEDDED_OVERRIDES,
  FormatError,
  type LoadedModel,
  type MemoryRunStore,
  PRETRAIN_CONFIG,
  TARGET,
  type ImageItem,
  type Trained,
  adapterFor,
  adapterFromFiles,
  assertFiniteLogits,
  applyConfig,
  buildModelGraph,
  compileWeb,
  configureWeb,
  decodeDigits,
  memoryRunStore,
  modelContext,
  modelFromTensors,
  parseSafetensors,
  pretrainTask,
  randomModel,
  toFloat32,
  train,
  trainConfig,
  trainedFiles,
  transferTask,
  webRuntime,
  webgpuAdapter,
} from "../src/browser.ts";
import type { CompiledGraph } from "../src/runtime/types.ts";
import type { Device, FromWorker, RunRow, StudioSettings, ToWorker } from "./protocol.ts";
import { workerLoop, yielding } from "./worker-loop.ts";

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);
const loop = workerLoop<ToWorker>({
  isRun: (m) => m.type === "train" || m.type === "resume" || m.type === "pretrain",
  handle,
  error: (message) => post({ type: "error", message }),
  idle: () => post({ type: "idle", stopped: paused !== undefined }),
});

/** Shots and test images per class of the transfer task, as `tenslora train` uses them. */
const SHOTS = 100;
const TEST_PER_CLASS = 200;
const LABELS = TARGET.map((d) => `digit ${d}`);

let device: Device = "wasm";
let digits: ImageItem[] | undefined;
let backbone: { config: Record<string, unknown>; tensors: Map<string, { shape: number[]; dtype: "F32"; data: Float32Array }>; source: string } | undefined;

interface Run {
  model: LoadedModel;
  trained?: Trained;
  classifier?: CompiledGraph;
}
const runs = new Map<string, Run>();
/** The interrupted run (resumable) and the runs queued after it. */
let paused: { resumeRun: () => Promise<void>; queue: string[]; settings: StudioSettings } | undefined;

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new FormatError(`${what} is not loaded yet`);
  return v;
}

function embeddedModel(seed: number): LoadedModel {
  const b = need(backbone, "the backbone");
  return modelFromTensors(
    b.config,
    b.tensors,
    { dir: b.source, configPath: `${b.source} config.json`, weightsPath: b.source },
    { numLabels: TARGET.length, labels: LABELS, seed },
  );
}

function setBackbone(config: Record<string, unknown>, weights: Map<string, { shape: number[]; data: Float32Array }>, source: string): void {
  const tensors = new Map([...weights].map(([k, t]) => [k, { shape: t.shape, dtype: "F32" as const, data: t.data }]));
  const previous = backbone;
  backbone = { config, tensors, source };
  try {
    const m = embeddedModel(0); // every key and shape checked now, not at the first run
    post({ type: "backbone", source, params: [...m.weights.values()].reduce((a, t) => a + t.data.length, 0) });
  } catch (e) {
    backbone = previous;
    throw e;
  }
  for (const r of runs.values()) r.classifier?.dispose();
  runs.clear();
}

async function runMethod(method: string, settings: StudioSettings, resume: boolean, store: MemoryRunStore, model: LoadedModel): Promise<boolean> {
  const cfg = applyConfig(applyConfig(DEFAULTS, EMBEDDED_OVERRIDES, "embedded"), { ...settings, construction: method }, "studio");
  const { adapter, trainable } = adapterFor(model, cfg);
  const config = trainConfig(cfg, model.family.task);
  const data = yielding(transferTask(need(digits, "the digits"), SHOTS, TEST_PER_CLASS, cfg.seed));
  const result = await train({
    model,
    adapter,
    trainable,
    data,
    config,
    store,
    runtime: webRuntime(device),
    resume,
    shouldStop: loop.stopRequested,
    onEvent: (e) => {
      if (e.type === "step") post({ type: "step", run: method, step: e.step, total: e.total, loss: e.loss });
      if (e.type === "eval") post({ type: "eval", run: method, step: e.step, accuracy: Number(e.metrics.accuracy) });
    },
  });
  if (result.interrupted) {
    paused = { resumeRun: () => runMethod(method, settings, true, store, model).then(() => undefined), queue: [], settings };
    post({ type: "run-done", row: row(method, adapter, result, store), interrupted: true });
    return false;
  }
  runs.get(method)?.classifier?.dispose();
  runs.set(method, { model, trained: store.trained.get("best") ?? store.trained.get("last") });
  post({ type: "run-done", row: row(method, adapter, result, store), interrupted: false });
  return true;
}

function row(
  method: string,
  adapter: { config: { ranks: number[] }; tensors: Map<string, { data: Float32Array }> } | undefined,
  r: Awaited<ReturnType<typeof train>>,
  store: MemoryRunStore,
): RunRow {
  const evals = store.records.filter((x) => x.type === "eval");
  return {
    run: method,
    ranks: adapter?.config.ranks ?? null,
    params: adapter ? [...adapter.tensors.values()].reduce((a, t) => a + t.data.length, 0) : 0,
    best: r.best?.test ?? Number.NaN,
    final: (evals.at(-1)?.accuracy as number | undefined) ?? Number.NaN,
    stepMs: r.stepSeconds * 1000,
    steps: r.steps,
  };
}

async function trainQueue(queue: string[], settings: StudioSettings): Promise<void> {
  while (queue.length) {
    const method = queue.shift()!;
    const finished = await runMethod(method, settings, false, memoryRunStore(), embeddedModel(settings.seed));
    if (!finished) {
      paused!.queue = queue;
      return;
    }
  }
}

async function classify(name: string, pixels: Uint8Array): Promise<void> {
  const run = need(runs.get(name), `run "${name}"`);
  const trained = need(run.trained, `the trained weights of "${name}"`);
  const model: LoadedModel = { ...run.model, weights: new Map([...run.model.weights, ...trained.weights]) };
  if (!run.classifier) {
    const built = buildModelGraph({ model, adapter: trained.adapter, batch: 1, trainable: "none" });
    run.classifier = await compileWeb(built.graph, device, ["logits"]);
  }
  // the digits' own normalisation: mean 0.5, std 0.5 on [0, 1] grey levels
  const x = Float32Array.from(pixels, (v) => (v / 255 - 0.5) / 0.5);
  const feeds = model.family.feeds(model.config, { pixel_values: { dtype: "float32", shape: [1, 1, 28, 28], data: x } });
  const logits = (await run.classifier.run(feeds)).logits.data as Float32Array;
  assertFiniteLogits(logits, `"${name}"`);
  const max = Math.max(...logits);
  const exp = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  post({ type: "prediction", run: name, probs: exp.map((v) => v / sum), labels: LABELS });
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case "init": {
      configureWeb({ wasmPaths: `${m.base}ort/`, threads: m.threads });
      const gpu = await webgpuAdapter();
      device = m.device === "auto" ? (gpu ? "webgpu" : "wasm") : m.device;
      const note =
        device === "webgpu"
          ? "Training on WebGPU."
          : gpu
            ? "Training on WebAssembly (CPU), as asked; this browser also has WebGPU."
            : "Training on WebAssembly (CPU): this browser has no WebGPU adapter.";
      post({ type: "ready", device, note });
      return;
    }
    case "digits":
      digits = decodeDigits(new Uint8Array(m.bytes), "digits.bin");
      post({ type: "status", text: `${digits.length} digits loaded` });
      return;
    case "backbone": {
      const name = m.name;
      let config = backbone?.config ?? EMBEDDED_CONFIG;
      if (m.config) {
        try {
          config = JSON.parse(new TextDecoder().decode(m.config));
        } catch (e) {
          throw new FormatError(`${name} config.json does not parse as JSON (${(e as Error).message})`);
        }
      }
      const file = parseSafetensors(new Uint8Array(m.weights), name);
      setBackbone(config, new Map([...file.tensors].map(([k, e]) => [k, { shape: e.shape, data: toFloat32(e, `${name}: tensor "${k}"`) }])), name);
      return;
    }
    case "pretrain": {
      const model = randomModel(EMBEDDED_CONFIG, 0, "pretrained in this tab");
      const store = memoryRunStore();
      const result = await train({
        model,
        trainable: "all",
        data: yielding(pretrainTask(need(digits, "the digits"))),
        config: { ...PRETRAIN_CONFIG, epochs: m.epochs },
        store,
        runtime: webRuntime(device),
        shouldStop: loop.stopRequested,
        onEvent: (e) => {
          if (e.type === "step") post({ type: "progress", what: "pretraining", step: e.step, total: e.total, loss: e.loss });
        },
      });
      if (result.interrupted) {
        post({ type: "status", text: "pretraining stopped; the backbone is unchanged" });
        return;
      }
      const weights = new Map([...model.weights, ...store.trained.get("last")!.weights]);
      setBackbone(model.rawConfig, weights, `pretrained in this tab (${(100 * Number(result.final?.accuracy ?? 0)).toFixed(1)} % on digits 0–4)`);
      return;
    }
    case "train":
      paused = undefined;
      await trainQueue([...m.methods], m.settings);
      return;
    case "resume": {
      const p = need(paused, "a stopped run");
      paused = undefined;
      await p.resumeRun();
      if (!paused) await trainQueue(p.queue, p.settings);
      return;
    }
    case "classify":
      return classify(m.run, m.pixels);
    case "download": {
      const run = need(runs.get(m.run), `run "${m.run}"`);
      const files = trainedFiles(run.model, need(run.trained, `the trained weights of "${m.run}"`));
      post({ type: "files", run: m.run, files: [...files].map(([name, bytes]) => ({ name, bytes })) });
      return;
    }
    case "adapter": {
      const model = embeddedModel(0);
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(new TextDecoder().decode(m.config));
      } catch (e) {
        throw new FormatError(
          `${m.names.config} does not parse as JSON (${(e as Error).message}); choose the ${ADAPTER_CONFIG} that was downloaded with the adapter`,
        );
      }
      const { set, head } = adapterFromFiles(raw, parseSafetensors(new Uint8Array(m.weights), m.names.weights).tensors, m.names, modelContext(model));
      const name = `uploaded ${set.config.construction}`;
      runs.get(name)?.classifier?.dispose();
      runs.set(name, { model, trained: { adapter: set, weights: head } });
      post({ type: "adapter-loaded", run: name });
      return;
    }
  }
}
