/**
 * The decoder page (lm.html): fine-tune a decoder (Llama, Mistral, Qwen2) with LoRA on a
 * quantized frozen base in this tab, on onnxruntime-web's WebAssembly backend. It fetches a model
 * folder's config.json and model.safetensors (or its shards); each linear weight is quantized as it is decoded,
 * so the float32 model never exists whole in the tab.
 *
 * window.tensloraLm.fineTune(options) resolves to the step losses, the step times and the tab's
 * memory; tests and benchmarks drive it through Chromium.
 */
import type { LazyCheckpointTensor } from "../src/io/checkpoint.ts";
import { type LoadedModel, configureWeb, modelFromTensors, parseBaseDType, parseSafetensors, toFloat32, webRuntime } from "../src/browser.ts";
import { type LmRunOptions, type LmRunResult, lmFineTune } from "./lm-run.ts";

export interface FineTuneOptions extends LmRunOptions {
  /** The model folder's URL, ending in "/" (config.json and model.safetensors in it). */
  model: string;
  baseDtype: string;
  /** WebAssembly threads (the page is cross-origin isolated when served by serve.ts); default 1. */
  threads?: number;
}

export interface FineTuneResult extends LmRunResult {
  /** Seconds to fetch, decode and quantize the weights. */
  loadSeconds: number;
  memory: TabMemory;
}

/** The tab's memory after training, as far as the browser tells it. */
export interface TabMemory {
  /** performance.measureUserAgentSpecificMemory (cross-origin isolated pages): JS heaps and WebAssembly memories. */
  measuredBytes?: number;
  /** performance.memory: the JS heap (not the WebAssembly memory). */
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

/** The folder's tensors: model.safetensors, or the shards its model.safetensors.index.json names (fetched whole, decoded lazily). */
async function fetchTensors(url: string, get: (f: string) => Promise<Response | undefined>): Promise<Map<string, LazyCheckpointTensor>> {
  const single = await get("model.safetensors");
  const index = single ? undefined : await get("model.safetensors.index.json");
  if (!single && !index) throw new Error(`${url}: neither model.safetensors nor model.safetensors.index.json`);
  const shards = index ? [...new Set(Object.values(((await index.json()) as { weight_map: Record<string, string> }).weight_map))] : ["model.safetensors"];
  const tensors = new Map<string, LazyCheckpointTensor>();
  for (const shard of shards) {
    const bytes = shard === "model.safetensors" && single ? single : await get(shard);
    if (!bytes) throw new Error(`${url}${shard}: not found`);
    const file = parseSafetensors(new Uint8Array(await bytes.arrayBuffer()), `${url}${shard}`);
    // each tensor decoded to float32 only when its turn comes, quantized, and dropped
    for (const [k, e] of file.tensors) tensors.set(k, { shape: e.shape, dtype: e.dtype, read: () => toFloat32(e, k) });
  }
  return tensors;
}

async function fetchModel(url: string, baseDtype: string): Promise<LoadedModel> {
  const get = async (f: string) => {
    const r = await fetch(url + f);
    return r.ok ? r : undefined;
  };
  const configFile = await get("config.json");
  if (!configFile) throw new Error(`${url}config.json: not found`);
  const config = (await configFile.json()) as Record<string, unknown>;
  const tensors = await fetchTensors(url, get);
  const where = { dir: url, configPath: `${url}config.json`, weightsPath: url };
  return modelFromTensors(config, tensors, where, { baseDtype: parseBaseDType(baseDtype) });
}

export async function fineTune(o: FineTuneOptions): Promise<FineTuneResult> {
  configureWeb({ wasmPaths: new URL("ort/", location.href).href, threads: o.threads ?? 1 });
  const t0 = performance.now();
  const model = await fetchModel(o.model, o.baseDtype);
  const loadSeconds = (performance.now() - t0) / 1000;
  const run = await lmFineTune(model, o, webRuntime("wasm"));
  return { ...run, loadSeconds, memory: await tabMemory() };
}

(globalThis as { tensloraLm?: unknown }).tensloraLm = { fineTune };
