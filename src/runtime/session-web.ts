/**
 * The browser backend (onnxruntime-web): the same graphs as session.ts, on WebGPU or on
 * WebAssembly. Two builds, each loaded when first used: WebGPU takes ONNX Runtime's native
 * WebGPU EP (the asyncify build, with a CPU EP for the ops it lacks); plain WebAssembly takes the
 * non-asyncify build, 3.5× faster on the CPU. Large weights stay out of the model bytes: each is
 * mounted as its own in-memory external-data file, so a session's WebAssembly heap receives the
 * weight once (copied into its tensor) rather than inside the model and again as the tensor.
 */
import type * as Ort from "onnxruntime-web";
import type { Graph, HostData } from "../ir/graph.ts";
import { type ExternalWeights, exportModel } from "../onnx/export.ts";
import { bytesOf } from "../onnx/proto.ts";
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

/** A model's large weights as in-memory files, one per tensor (no copy: views of the tensors' own bytes). */
export class MountedWeights implements ExternalWeights {
  /** A mounted file costs a map entry, not a page of a file: only the smallest tensors stay inline. */
  readonly minBytes = 4096;
  #files = new Map<HostData, string>();
  #bytes = new Map<string, Uint8Array>();

  locate(data: HostData): { file: string; offset: number; length: number } {
    let file = this.#files.get(data);
    if (!file) {
      file = `w${this.#files.size}.bin`;
      this.#files.set(data, file);
      this.#bytes.set(file, bytesOf(data));
    }
    return { file, offset: 0, length: data.byteLength };
  }

  /** The files for onnxruntime-web's `externalData` option. */
  files(): { path: string; data: Uint8Array }[] {
    return [...this.#bytes].map(([path, data]) => ({ path, data }));
  }
}

/** Compile a graph for onnxruntime-web on the given device; `store` keeps its large weights out of the model bytes. */
export async function compileWeb(
  graph: Graph,
  device: WebDevice,
  outputs = [...graph.outputs.keys()],
  store = new MountedWeights(),
): Promise<OrtCompiledGraph> {
  const bytes = exportModel(graph, { outputs, store });
  const ort = await ortFor(device);
  const session = await ort.InferenceSession.create(bytes, {
    externalData: store.files(),
    executionProviders: [device],
    // a 4 GiB heap holds the weights once: no pre-packed copy of each constant MatMul operand (the
    // tied embedding read as the head would be a second 0.5–1 GB), no arena growing by doubling
    enableCpuMemArena: false,
    extra: { session: { disable_prepacking: "1" } },
    graphOptimizationLevel: "extended",
    logSeverityLevel: 3,
  });
  return new OrtCompiledGraph(session, ort.Tensor as unknown as TensorCtor, graph, outputs);
}

/**
 * The browser's Runtime for `train`: graphs run by onnxruntime-web on WebAssembly or WebGPU.
 * `exclusiveSessions`: one session at a time (each session copies the frozen weights into the
 * heap, so a large model that evaluates while it trains needs it; see `Runtime`).
 */
export function webRuntime(device: WebDevice, o: { exclusiveSessions?: boolean } = {}): Runtime {
  return {
    name: `web-${device}`,
    exclusiveSessions: o.exclusiveSessions,
    compiler: () => {
      const store = new MountedWeights();
      return { compile: (graph, o = {}) => compileWeb(graph, device, o.outputs, store), dispose() {} };
    },
  };
}
