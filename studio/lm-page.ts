/**
 * The decoder page (lm.html): fine-tune a decoder (Llama, Mistral, Qwen2) with LoRA or a TensLoRA
 * construction on a quantized frozen base in this tab; the worker (lm-worker.ts) loads and trains
 * on onnxruntime-web's WebAssembly backend while the page draws the loss, the step time and the
 * tab's memory, and downloads the adapter as PEFT files.
 *
 * `window.tensloraLm.fineTune(options)` runs a model folder on this server on token cycles and
 * resolves to the step losses, step times and the tab's memory (benchmarks drive it through
 * Chromium); `window.tensloraLm.state` is what the page shows.
 */
import { BASE_DTYPES, CONSTRUCTIONS } from "../src/browser.ts";
import { NON_NEGATIVE, lineChart } from "./chart.ts";
import { $, download, messageBox } from "./dom.ts";
import type { FromLmWorker, LmTrainRequest, ModelSource, ToLmWorker, TrainingText } from "./lm-protocol.ts";
import type { LmRunOptions, LmRunResult } from "./lm-run.ts";

export interface FineTuneOptions extends LmRunOptions {
  /** The model folder's URL, ending in "/" (config.json and model.safetensors in it). */
  model: string;
  baseDtype: string;
  /** WebAssembly threads (the page is cross-origin isolated when served by serve.ts); default 1. */
  threads?: number;
}

export interface FineTuneResult extends LmRunResult {
  /** Seconds to fetch, decode and quantize the weights (0 when the model was already loaded). */
  loadSeconds: number;
  memory: TabMemory;
}

/** The tab's memory, as far as the browser tells it. */
export interface TabMemory {
  /** performance.measureUserAgentSpecificMemory (cross-origin isolated pages): the JS heaps and WebAssembly memories of the page and its workers. */
  measuredBytes?: number;
  /** performance.memory: the page's JS heap (not the worker's, not the WebAssembly memory). */
  jsHeapUsedBytes?: number;
}

async function tabMemory(): Promise<TabMemory> {
  const perf = performance as Performance & {
    measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }>;
    memory?: { usedJSHeapSize: number };
  };
  const out: TabMemory = {};
  if (perf.memory) out.jsHeapUsedBytes = perf.memory.usedJSHeapSize;
  if (globalThis.crossOriginIsolated && perf.measureUserAgentSpecificMemory) out.measuredBytes = (await perf.measureUserAgentSpecificMemory()).bytes;
  return out;
}

const state = {
  running: false,
  losses: [] as number[],
  evals: [] as { step: number; loss: number }[],
  /** performance.now() at each step event. */
  stepTimes: [] as number[],
  memory: {} as TabMemory,
  result: undefined as FineTuneResult | undefined,
  errors: [] as string[],
};
const { show: showError, clear: clearError } = messageBox(state.errors);

let worker: { w: Worker; threads: number } | undefined;
let pending: { resolve: (r: FineTuneResult) => void; reject: (e: Error) => void } | undefined;

const defaultThreads = () =>
  crossOriginIsolated ? Number(new URLSearchParams(location.search).get("threads") ?? Math.min(4, navigator.hardwareConcurrency || 1)) : 1;

/** The worker, started (again) when the thread count changes: onnxruntime-web reads it once. */
function workerFor(threads: number): Worker {
  if (worker?.threads !== threads) {
    worker?.w.terminate();
    const w = new Worker(new URL("./lm-worker.js", import.meta.url), { type: "module" });
    w.onmessage = (ev: MessageEvent<FromLmWorker>) => void onMessage(ev.data);
    w.onerror = (e) => fail(`the training worker failed: ${e.message}`);
    w.postMessage({ type: "init", base: new URL(".", location.href).href, threads } satisfies ToLmWorker);
    worker = { w, threads };
  }
  return worker.w;
}

const send = (m: ToLmWorker) => workerFor(worker?.threads ?? defaultThreads()).postMessage(m);

function setRunning(running: boolean): void {
  state.running = running;
  $<HTMLButtonElement>("start").disabled = running;
  $<HTMLButtonElement>("stop").disabled = !running;
  $<HTMLButtonElement>("download").disabled = running || !state.result;
}

function fail(message: string): void {
  showError(message);
  setRunning(false);
  pending?.reject(new Error(message));
  pending = undefined;
}

function redraw(): void {
  lineChart(
    $("loss-chart") as unknown as SVGSVGElement,
    [
      { name: "training", points: state.losses.map((l, i) => [i + 1, l]) },
      { name: "evaluation", points: state.evals.map((e) => [e.step, e.loss]) },
    ],
    "step",
    NON_NEGATIVE,
    NON_NEGATIVE,
  );
}

const mb = (bytes: number) => `${Math.round(bytes / 1e6).toLocaleString("en-US")} MB`;

/** The tab's memory, measured after a step when no measurement is under way (one can take a while). */
let measuring = false;
function measureMemory(): void {
  if (measuring) return;
  measuring = true;
  void tabMemory()
    .then((m) => {
      state.memory = m;
      const parts = [m.measuredBytes === undefined ? "not measurable here (needs a cross-origin isolated page)" : mb(m.measuredBytes)];
      if (m.jsHeapUsedBytes !== undefined) parts.push(`page JS heap ${mb(m.jsHeapUsedBytes)}`);
      $("tab-memory").textContent = `tab memory ${parts.join(", ")}`;
    })
    .finally(() => (measuring = false));
}

async function onMessage(m: FromLmWorker): Promise<void> {
  switch (m.type) {
    case "status":
      $("run-status").textContent = m.text;
      return;
    case "loaded":
      $("model-status").textContent =
        `${m.name}, ${m.params.toLocaleString("en-US")} parameters` + (m.reused ? " (already loaded)" : `, loaded in ${m.loadSeconds.toFixed(1)} s`);
      return;
    case "step": {
      state.losses.push(m.loss);
      state.stepTimes.push(performance.now());
      const recent = state.stepTimes.slice(-6);
      if (recent.length > 1) $("step-time").textContent = `step time ${((recent.at(-1)! - recent[0]) / 1000 / (recent.length - 1)).toFixed(2)} s`;
      $("run-status").textContent = `step ${m.step}/${m.total}, loss ${m.loss.toFixed(4)}`;
      redraw();
      measureMemory();
      return;
    }
    case "eval":
      state.evals.push({ step: m.step, loss: m.loss });
      redraw();
      return;
    case "done": {
      const result: FineTuneResult = { ...m.result, loadSeconds: m.loadSeconds, memory: state.memory };
      state.result = result;
      $("run-status").textContent = result.interrupted
        ? `stopped after ${result.losses.length} steps${result.evals.length ? `; the adapter is the one evaluated at step ${result.evals.at(-1)!.step}` : "; no evaluation yet, so no adapter"}`
        : `done: ${result.losses.length} steps in ${result.trainSeconds.toFixed(1)} s`;
      setRunning(false);
      // a scripted run gets the memory measured now: with WebAssembly threads idle in their pool, that can take a minute
      const waiting = pending;
      pending = undefined;
      if (waiting) waiting.resolve({ ...result, memory: await tabMemory() });
      else measureMemory();
      return;
    }
    case "files":
      for (const f of m.files) download(f.name, f.bytes);
      return;
    case "error":
      fail(m.message);
      return;
  }
}

/** Train in the worker; resolves when it is done (or stopped). */
function run(request: LmTrainRequest, threads: number): Promise<FineTuneResult> {
  if (state.running) return Promise.reject(new Error("a run is in progress; stop it first"));
  clearError();
  Object.assign(state, { losses: [], evals: [], stepTimes: [], result: undefined });
  redraw();
  setRunning(true);
  $("run-status").textContent = "loading the model…";
  workerFor(threads).postMessage({ type: "train", ...request } satisfies ToLmWorker);
  return new Promise((resolve, reject) => (pending = { resolve, reject }));
}

/** For tests and benchmarks: a model folder on this server, trained on token cycles. */
export function fineTune(o: FineTuneOptions): Promise<FineTuneResult> {
  const { model, baseDtype, threads, ...options } = o;
  return run({ model: { kind: "url", url: model }, baseDtype, data: { kind: "cycles" }, options }, threads ?? 1);
}

(globalThis as { tensloraLm?: unknown }).tensloraLm = { fineTune, state };

// the controls

for (const d of BASE_DTYPES) $<HTMLSelectElement>("base-dtype").append(new Option(d, d, d === "int4", d === "int4"));
for (const c of CONSTRUCTIONS) $<HTMLSelectElement>("construction").append(new Option(c, c, c === "lora", c === "lora"));

/** The model the user chose: files (a folder's or single ones, the later choice wins) or a URL. */
let chosen: ModelSource | undefined;
const chooseFiles = (input: HTMLInputElement) => {
  const files = [...(input.files ?? [])];
  if (!files.length) return;
  chosen = { kind: "files", files };
  $("model-status").textContent = `${files.length} file(s) chosen: ${files.map((f) => f.name).join(", ")}`;
};
$<HTMLInputElement>("model-files").onchange = (e) => chooseFiles(e.target as HTMLInputElement);
$<HTMLInputElement>("model-folder").onchange = (e) => chooseFiles(e.target as HTMLInputElement);
$<HTMLInputElement>("model-url").onchange = (e) => {
  const v = (e.target as HTMLInputElement).value.trim();
  chosen = v ? { kind: "url", url: new URL(v.endsWith("/") ? v : `${v}/`, location.href).href } : undefined;
  $("model-status").textContent = chosen ? `the folder ${v}` : "No model chosen.";
};

/** The name the text goes by in messages; a loaded file's, else the text box's. */
let textName = "the text box";
$<HTMLInputElement>("text-file").onchange = async (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  $<HTMLTextAreaElement>("text").value = await file.text();
  $<HTMLSelectElement>("text-format").value = file.name.endsWith(".jsonl") ? "jsonl" : "txt";
  $<HTMLSelectElement>("data-kind").value = "text";
  textName = file.name;
};
$("text").oninput = () => (textName = "the text box");

const num = (id: string) => Number($<HTMLInputElement>(id).value);

function trainingText(): TrainingText {
  if ($<HTMLSelectElement>("data-kind").value === "cycles") return { kind: "cycles" };
  // the format goes by the name's extension, as `tenslora train --data` reads a file
  const base = textName.replace(/\.(jsonl|txt)$/, "");
  return { kind: "text", name: `${base}.${$<HTMLSelectElement>("text-format").value}`, text: $<HTMLTextAreaElement>("text").value };
}

$("start").onclick = () => {
  if (!chosen) return showError("choose a model first: its files (config.json, model.safetensors, tokenizer.json), its folder, or a folder URL");
  const options: LmRunOptions = {
    steps: num("steps"),
    seqLen: num("seq-len"),
    batch: num("batch"),
    construction: $<HTMLSelectElement>("construction").value,
    rank: num("rank"),
    ranks: $<HTMLInputElement>("ranks").value.trim(),
    targetModules: $<HTMLSelectElement>("target-modules").value,
    lr: num("lr"),
    seed: num("seed"),
    evalEvery: num("eval-every"),
  };
  run({ model: chosen, baseDtype: $<HTMLSelectElement>("base-dtype").value, data: trainingText(), options }, defaultThreads()).catch(() => {
    // shown in the message box already
  });
};
$("stop").onclick = () => send({ type: "stop" });
$("download").onclick = () => send({ type: "download" });

$("device-note").textContent =
  `WebAssembly (CPU), ${crossOriginIsolated ? `${defaultThreads()} thread(s)` : "1 thread (the page is not cross-origin isolated)"}.`;
setRunning(false);
redraw();
