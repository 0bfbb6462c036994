/**
 * The browser backend (onnxruntime-web): the same graphs as session.ts, on WebGPU or on
 * WebAssembly. Two builds, each loaded when first used: WebGPU takes ONNX Runtime's native
 * WebGPU EP (the asyncify build, with a CPU EP for the ops it lacks); plain WebAssembly takes the
 * non-asyncify build, 3.5× faster on the CPU. Weights are inlined in each model (no file
 * system); the embedded ViT's are small.
 */
import type * as Ort from "onnxruntime-web";
import type { Graph } from "../ir/graph.ts";
import { exportModel } from "../onnx/export.ts";
import { OrtCompiledGraph, type TensorCtor } from "./compiled.ts";
import type { Runtime } from "./types.ts";

/** Where onnxruntime-web runs a graph: WebAssembly on the CPU, or WebGPU. */
export type WebDevice = "wasm" | "webgpu";

export interface WebRuntimeOptions {
  /** Where onnxruntime-web fetches its .wasm (and .mjs) files from: a URL prefix ending in "/". */
  wasmPaths?: string;
  /** WebAssembly threads (need a cross-origin isolated page); default 1. */
  threads?: number;
}

/** The files each build fetches at run time from `wasmPaths`. */
export const WEB_RUNTIME_FILES: Record<WebDevice, string[]> = {
  wasm: ["ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"],
  webgpu: ["ort-wasm-simd-threaded.asyncify.wasm", "ort-wasm-simd-threaded.asyncify.mjs"],
};

let settings: WebRuntimeOptions = {};
const builds = new Map<WebDevice, Promise<typeof Ort>>();

/** Point onnxruntime-web at its files; call before compiling. */
export function configureWeb(o: WebRuntimeOptions): void {
  settings = o;
}

function ortFor(device: WebDevice): Promise<typeof Ort> {
  let build = builds.get(device);
  if (!build) {
    build = (device === "webgpu" ? import("onnxruntime-web/webgpu") : import("onnxruntime-web/wasm")).then((ort) => {
      if (settings.wasmPaths) ort.env.wasm.wasmPaths = settings.wasmPaths;
      ort.env.wasm.numThreads = settings.threads ?? 1;
      ort.env.logLevel = "error";
      return ort as typeof Ort;
    });
    builds.set(device, build);
  }
  return build;
}

/** Whether this browser gives WebGPU an adapter (a software one counts). */
export async function webgpuAdapter(): Promise<boolean> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<unknown> } } | undefined)?.gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

/** Compile a graph for onnxruntime-web on the given device. */
export async function compileWeb(graph: Graph, device: WebDevice, outputs = [...graph.outputs.keys()]): Promise<OrtCompiledGraph> {
  const bytes = exportModel(graph, { outputs });
  const ort = await ortFor(device);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [device],
    graphOptimizationLevel: "extended",
    logSeverityLevel: 3,
  });
  return new OrtCompiledGraph(session, ort.Tensor as unknown as TensorCtor, graph, outputs);
}

/** The browser's Runtime for `train`: graphs run by onnxruntime-web on WebAssembly or WebGPU. */
export function webRuntime(device: WebDevice): Runtime {
  return {
    name: `web-${device}`,
    compiler: () => ({ compile: (graph, o = {}) => compileWeb(graph, device, o.outputs), dispose() {} }),
  };
}
