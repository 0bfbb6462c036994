/**
 * The browser backend (onnxruntime-web): the same graphs as session.ts, on WebGPU or on
 * WebAssembly. Weights are inlined in each model (no file system); the embedded ViT's are small.
 */
import * as ort from "onnxruntime-web";
import type { Graph } from "../ir/graph.ts";
import { exportModel } from "../onnx/export.ts";
import { CompiledGraph, type Runtime, type TensorCtor } from "./compiled.ts";

export type WebDevice = "wasm" | "webgpu";

export interface WebRuntimeOptions {
  /** Where onnxruntime-web fetches its .wasm (and .mjs) files from: a URL prefix ending in "/". */
  wasmPaths?: string;
  /** WebAssembly threads (need a cross-origin isolated page); default 1. */
  threads?: number;
}

/** Point onnxruntime-web at its files; call once before compiling. */
export function configureWeb(o: WebRuntimeOptions): void {
  if (o.wasmPaths) ort.env.wasm.wasmPaths = o.wasmPaths;
  ort.env.wasm.numThreads = o.threads ?? 1;
  ort.env.logLevel = "error";
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

export async function compileWeb(graph: Graph, device: WebDevice, outputs = [...graph.outputs.keys()]): Promise<CompiledGraph> {
  const bytes = exportModel(graph, { outputs });
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [device],
    graphOptimizationLevel: "extended",
    logSeverityLevel: 3,
  });
  return new CompiledGraph(session, ort.Tensor as unknown as TensorCtor, graph, outputs);
}

export function webRuntime(device: WebDevice): Runtime {
  return {
    name: `web-${device}`,
    compiler: () => ({ compile: (graph, o = {}) => compileWeb(graph, device, o.outputs), dispose() {} }),
  };
}
