/**
 * The studio page: loads the backbone and digits from the server it came from, drives the
 * training worker, and draws what comes back. `window.studio` exposes the page's state for
 * scripted use (the Chromium tests read the step losses there).
 */
import { CONSTRUCTIONS } from "../src/adapters/constructions.ts";
import { NON_NEGATIVE, lineChart, scatterChart, type Series } from "./chart.ts";
import { $, download, messageBox } from "./dom.ts";
import type { Device, FromWorker, RunRow, StudioSettings, ToWorker } from "./protocol.ts";

const METHODS = [...CONSTRUCTIONS, "head"];
/** Accuracy is charted in percent, as the results table shows it. */
const PERCENT = { bounds: [0, 100] } as const;
const DEFAULT_CHECKED = new Set(["lora", "qkv_depth", "att_qkv_depth", "head"]);

const state = {
  device: undefined as Device | undefined,
  backbone: undefined as string | undefined,
  losses: {} as Record<string, number[]>,
  /** The step losses of pretraining in this tab. */
  pretrainLosses: [] as number[],
  /** performance.now() at each step's report, for the benchmark's steps/s. */
  stepTimes: {} as Record<string, number[]>,
  accuracy: {} as Record<string, [number, number][]>,
  rows: [] as RunRow[],
  errors: [] as string[],
  busy: false,
  stopped: false,
  predictions: [] as { run: string; label: string; p: number }[],
};
(window as unknown as { studio: typeof state }).studio = state;

const params = new URLSearchParams(location.search);
const device = (params.get("device") ?? "auto") as Device | "auto";
$<HTMLSelectElement>("device").value = device;
$<HTMLSelectElement>("device").onchange = (e) => {
  params.set("device", (e.target as HTMLSelectElement).value);
  location.search = params.toString();
};

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const send = (m: ToWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);

const { show: showError, clear: clearError } = messageBox(state.errors);

function setBusy(busy: boolean): void {
  state.busy = busy;
  $<HTMLButtonElement>("train").disabled = busy || !state.backbone;
  $<HTMLButtonElement>("pretrain").disabled = busy;
  $<HTMLButtonElement>("stop").disabled = !busy;
  $<HTMLButtonElement>("resume").disabled = busy || !state.stopped;
}

function redrawCurves(): void {
  const runs = Object.keys(state.losses);
  lineChart(
    $("loss-chart") as unknown as SVGSVGElement,
    runs.map((r): Series => ({ name: r, points: state.losses[r].map((l, i) => [i + 1, l]) })),
    "step",
    NON_NEGATIVE,
    NON_NEGATIVE,
  );
  lineChart(
    $("acc-chart") as unknown as SVGSVGElement,
    runs.map((r): Series => ({ name: r, points: (state.accuracy[r] ?? []).map(([step, a]) => [step, 100 * a]) })),
    "step",
    PERCENT,
    NON_NEGATIVE,
  );
}

function redrawComparison(): void {
  const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) : "–");
  $("results")
    .querySelector("tbody")!
    .replaceChildren(
      ...state.rows.map((r) => {
        const tr = document.createElement("tr");
        for (const v of [r.run, r.ranks ? r.ranks.join(",") : "–", r.params.toLocaleString("en-US"), pct(r.best), pct(r.final), r.stepMs.toFixed(1)]) {
          const td = document.createElement("td");
          td.textContent = v;
          tr.append(td);
        }
        return tr;
      }),
    );
  scatterChart(
    $("compare-chart") as unknown as SVGSVGElement,
    state.rows.map((r) => ({ x: r.params, y: 100 * r.best, label: r.run })),
    "adapter parameters (log)",
    PERCENT,
  );
}

function addRunOption(run: string): void {
  const select = $<HTMLSelectElement>("run-select");
  if (![...select.options].some((o) => o.value === run)) select.append(new Option(run, run));
  select.value = run;
}

worker.onmessage = (ev: MessageEvent<FromWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case "ready":
      state.device = m.device;
      $("device-note").textContent = m.note;
      return;
    case "status":
      $("run-status").textContent = m.text;
      return;
    case "backbone":
      state.backbone = m.source;
      $("backbone-status").textContent = `Backbone: ${m.source} (${m.params.toLocaleString("en-US")} parameters with the 5-way head).`;
      $("progress").hidden = true;
      setBusy(state.busy);
      return;
    case "progress": {
      const bar = $<HTMLProgressElement>("progress");
      bar.hidden = false;
      bar.max = m.total;
      bar.value = m.step;
      state.pretrainLosses.push(m.loss);
      $("backbone-status").textContent = `Pretraining on digits 0–4: step ${m.step}/${m.total}, loss ${m.loss.toFixed(4)}`;
      return;
    }
    case "step":
      (state.losses[m.run] ??= []).push(m.loss);
      (state.stepTimes[m.run] ??= []).push(performance.now());
      $("run-status").textContent = `${m.run}: step ${m.step}/${m.total}, loss ${m.loss.toFixed(4)}`;
      redrawCurves();
      return;
    case "eval":
      (state.accuracy[m.run] ??= []).push([m.step, m.accuracy]);
      redrawCurves();
      return;
    case "run-done":
      if (m.interrupted) {
        $("run-status").textContent = `${m.row.run}: stopped at step ${m.row.steps}; Resume continues it`;
        return;
      }
      state.rows = [...state.rows.filter((r) => r.run !== m.row.run), m.row];
      redrawComparison();
      addRunOption(m.row.run);
      return;
    case "idle":
      state.stopped = m.stopped;
      setBusy(false);
      return;
    case "prediction": {
      const ranked = m.probs.map((p, i) => ({ p, label: m.labels[i] })).sort((a, b) => b.p - a.p);
      state.predictions.push({ run: m.run, ...ranked[0] });
      $("prediction").replaceChildren(
        ...ranked.map((r) => Object.assign(document.createElement("li"), { textContent: `${r.label}: ${(100 * r.p).toFixed(1)} %` })),
      );
      return;
    }
    case "files":
      for (const f of m.files) download(f.name, f.bytes);
      return;
    case "adapter-loaded":
      addRunOption(m.run);
      $("run-status").textContent = `${m.run} loaded; draw a digit and classify`;
      return;
    case "error":
      showError(m.message);
      return;
  }
};
worker.onerror = (e) => showError(`the training worker failed: ${e.message}`);

async function fetchBytes(path: string): Promise<ArrayBuffer | undefined> {
  const res = await fetch(path);
  return res.ok ? res.arrayBuffer() : undefined;
}

async function start(): Promise<void> {
  // WebAssembly threads need a cross-origin isolated page (serve.ts sends the headers)
  const threads = crossOriginIsolated ? Number(params.get("threads") ?? Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  send({ type: "init", device, base: new URL(".", location.href).href, threads });
  const digits = await fetchBytes("digits.bin");
  if (!digits) return showError("digits.bin is missing on this server; serve the page with `npx tenslora studio`");
  send({ type: "digits", bytes: digits }, [digits]);
  const [config, weights] = await Promise.all([fetchBytes("backbone/config.json"), fetchBytes("backbone/model.safetensors")]);
  if (config && weights) send({ type: "backbone", config, weights, name: "backbone/model.safetensors" }, [config, weights]);
  else $("backbone-status").textContent = "This server has no pretrained weights: pretrain in this tab, or load a model.safetensors.";
}

for (const m of METHODS) {
  const label = document.createElement("label");
  const box = Object.assign(document.createElement("input"), { type: "checkbox", name: "method", value: m, checked: DEFAULT_CHECKED.has(m) });
  label.append(box, ` ${m}`);
  $("methods").append(label);
}

const num = (id: string) => Number($<HTMLInputElement>(id).value);
$("train").onclick = () => {
  clearError();
  const methods = [...document.querySelectorAll<HTMLInputElement>("input[name=method]:checked")].map((b) => b.value);
  if (!methods.length) return showError("pick at least one construction");
  const settings: StudioSettings = {
    isoLora: num("iso-lora"),
    epochs: num("epochs"),
    batchSize: num("batch-size"),
    lr: num("lr"),
    seed: num("seed"),
    evalEvery: 0,
  };
  for (const m of methods) {
    delete state.losses[m];
    delete state.stepTimes[m];
    delete state.accuracy[m];
  }
  state.stopped = false;
  setBusy(true);
  send({ type: "train", methods, settings });
};
$("stop").onclick = () => send({ type: "stop" });
$("resume").onclick = () => {
  clearError();
  setBusy(true);
  send({ type: "resume" });
};
$("pretrain").onclick = () => {
  clearError();
  state.pretrainLosses = [];
  setBusy(true);
  send({ type: "pretrain", epochs: num("pretrain-epochs") });
};
$<HTMLInputElement>("weights-file").onchange = async (e) => {
  clearError();
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) send({ type: "backbone", weights: await file.arrayBuffer(), name: file.name });
};
$<HTMLInputElement>("adapter-files").onchange = async (e) => {
  clearError();
  const files = [...((e.target as HTMLInputElement).files ?? [])];
  const config = files.find((f) => f.name.endsWith(".json"));
  const weights = files.find((f) => f.name.endsWith(".safetensors"));
  if (!config || !weights) return showError("choose both files of the adapter: adapter_config.json and adapter_model.safetensors");
  send({ type: "adapter", config: await config.arrayBuffer(), weights: await weights.arrayBuffer(), names: { config: config.name, weights: weights.name } });
};
$("download").onclick = () => {
  const run = $<HTMLSelectElement>("run-select").value;
  if (!run) return showError("train a construction first");
  send({ type: "download", run });
};

// the drawing pad: white strokes on black, as MNIST stores digits
const pad = $<HTMLCanvasElement>("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true })!;
const clearPad = () => {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
};
clearPad();
let drawing = false;
pad.onpointerdown = (e) => {
  drawing = true;
  ctx.beginPath();
  ctx.moveTo(e.offsetX, e.offsetY);
};
pad.onpointermove = (e) => {
  if (!drawing) return;
  Object.assign(ctx, { strokeStyle: "#fff", lineWidth: 18, lineCap: "round", lineJoin: "round" });
  ctx.lineTo(e.offsetX, e.offsetY);
  ctx.stroke();
};
pad.onpointerup = pad.onpointerleave = () => (drawing = false);
$("clear").onclick = clearPad;

/** MNIST's framing: the digit's bounding box scaled into 20×20, centred in 28×28. */
function padPixels(): Uint8Array | undefined {
  const { data } = ctx.getImageData(0, 0, pad.width, pad.height);
  let [x0, y0, x1, y1] = [pad.width, pad.height, -1, -1];
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (data[(y * pad.width + x) * 4] > 0) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  if (x1 < 0) return undefined;
  const side = Math.max(x1 - x0, y1 - y0) + 1;
  const small = Object.assign(document.createElement("canvas"), { width: 28, height: 28 });
  const s = small.getContext("2d", { willReadFrequently: true })!;
  s.fillStyle = "#000";
  s.fillRect(0, 0, 28, 28);
  const w = (20 * (x1 - x0 + 1)) / side;
  const h = (20 * (y1 - y0 + 1)) / side;
  s.drawImage(pad, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (28 - w) / 2, (28 - h) / 2, w, h);
  const px = s.getImageData(0, 0, 28, 28).data;
  return Uint8Array.from({ length: 28 * 28 }, (_, i) => px[i * 4]);
}

$("classify").onclick = () => {
  clearError();
  const run = $<HTMLSelectElement>("run-select").value;
  if (!run) return showError("train a construction (or load an adapter) first");
  const pixels = padPixels();
  if (!pixels) return showError("draw a digit first");
  send({ type: "classify", run, pixels });
};

setBusy(false);
void start();
