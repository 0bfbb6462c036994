/**
 * The Node backend (onnxruntime-node): a graph is compiled once per shape family into an
 * InferenceSession (compiled.ts runs it); without onnxruntime-node, on onnxruntime-web's WebAssembly build. session-web.ts is the browser's backend; these two
 * are the only modules that import ONNX Runtime; everything above them sees types.ts.
 */
import { availableParallelism } from "node:os";
import type Ort from "onnxruntime-node";
import type { Graph } from "../ir/graph.ts";
import { exportModel } from "../onnx/export.ts";
import { WeightStore } from "../onnx/weight-store.ts";
import { graphOf, inlineWeights } from "../onnx/model-file.ts";
import { onnx } from "../onnx/proto.ts";
import { type Quantization, quantizeDynamicInt8 } from "../onnx/quantize.ts";
import { OrtCompiledGraph, type TensorCtor } from "./compiled.ts";
import { compileWeb } from "./session-web.ts";
import type { Runtime } from "./types.ts";

/** onnxruntime-node with TENSLORA_EP's providers; the frozen weights of a model's graphs share one external file. */
export const nodeRuntime: Runtime = nodeRuntimeWith({});

/**
 * onnxruntime-node as `nodeRuntime`, with options for every graph it compiles: `quantize` runs
 * them with int8 weight matrices, as the merged ONNX export's `--quantize q8` file stores them.
 */
export function nodeRuntimeWith(o: { quantize?: Quantization }): Runtime {
  return {
    get name() {
      return `node-${defaultProviders()[0]}${o.quantize ? `-${o.quantize}` : ""}`;
    },
    compiler() {
      const store = new WeightStore();
      return {
        compile: (graph, c = {}) => compile(graph, { store, threads: c.threads, outputs: c.outputs, quantize: o.quantize }),
        dispose: () => store.dispose(),
      };
    },
  };
}

export type OptimizationLevel = "disabled" | "basic" | "extended" | "all";

/** How to compile a graph for onnxruntime-node: outputs, threads, optimisation, providers. */
export interface CompileOptions {
  /** Graph outputs to compute (default: all). */
  outputs?: string[];
  /** Intra-op threads; default: the machine's cores. */
  threads?: number;
  /** ORT graph optimisation; 'extended' fuses MatMul+Add into Gemm and is what the benchmarks use. */
  optimization?: OptimizationLevel;
  /** External-data store for large weights (shared across a model's graphs). */
  store?: WeightStore;
  /** Execution providers; default from TENSLORA_EP (e.g. "cuda") or CPU. */
  executionProviders?: string[];
  /** Write an ORT profile (JSON) with this file prefix. */
  profilePrefix?: string;
  /** Generator-side MatMul + Add → Gemm fusion (src/onnx/fuse.ts); default false. */
  fuse?: boolean;
  /**
   * Let idle intra-op threads spin-wait for the next op (ORT's own default). Default false: they
   * sleep at once. Measured on the shared 2-core dev box (ViT-B block step): 15–20 % less time
   * without spinning while other processes ran; 2–3 % more when the machine was quiet. Spinning
   * threads also starve other sessions and processes (PyTorch's best setting here is likewise
   * OMP_WAIT_POLICY=PASSIVE).
   */
  spin?: boolean;
  /**
   * ORT's memory pattern (one pre-planned block per run). Default false: with the arena on, the
   * pattern block comes on top of the arena chunks the first run allocated, so a ViT-B batch-8
   * training step held 2.6 GB of activations instead of 1.3 GB, and was no faster.
   */
  memPattern?: boolean;
  /**
   * ORT's pre-packing of constant MatMul operands (default true). Each packed weight is a second
   * copy beside the initializer, one per layout its consumers ask for (a tied embedding read
   * transposed by the LM head and plain by its gradient: three copies).
   */
  prepack?: boolean;
  /**
   * ONNX Runtime's CPU memory arena (default true). Off, each tensor is its own allocation, freed
   * back to the system: a lower peak where the arena's pages stay resident after a step used them,
   * and a slower step (measured at the SmolLM2 training step: −6 % RSS, +25–30 % time).
   */
  arena?: boolean;
  /** Run the graph with int8 weight matrices, as the merged ONNX export's `--quantize q8` file stores them. */
  quantize?: Quantization;
}

/** The model bytes with every weight matrix quantized (weights pulled inline from the store first). */
function quantized(bytes: Uint8Array, store: WeightStore | undefined): Uint8Array {
  const proto = onnx.ModelProto.decode(bytes);
  if (store) inlineWeights(graphOf(proto), store);
  quantizeDynamicInt8(proto);
  return onnx.ModelProto.encode(proto).finish();
}

/** The execution providers a session asks for unless told otherwise: TENSLORA_EP's list, then CPU. */
export function defaultProviders(): string[] {
  const ep = process.env.TENSLORA_EP;
  return ep ? [...ep.split(","), "cpu"] : ["cpu"];
}

type OrtNode = typeof Ort;
let ortNode: Promise<OrtNode | undefined> | undefined;

/**
 * onnxruntime-node, or undefined where it is not installed. It is an optional dependency: on
 * Linux x64 its install script fetches the CUDA provider, and where that host is unreachable npm
 * drops the package rather than failing the user's whole install. Graphs then run on
 * onnxruntime-web's WebAssembly build, which Node runs too, one thread, with one warning.
 */
function loadOrtNode(): Promise<OrtNode | undefined> {
  ortNode ??= import("onnxruntime-node").then(
    (m) => (m as { default?: OrtNode }).default ?? (m as OrtNode),
    (e: NodeJS.ErrnoException) => {
      if (e.code !== "ERR_MODULE_NOT_FOUND") throw e;
      console.warn(
        "tenslora: warning: onnxruntime-node is not installed (npm drops it when its install script cannot fetch the CUDA provider); " +
          "running on onnxruntime-web's WebAssembly build, one thread and several times slower. Fix: `npm pkg set allowScripts.onnxruntime-node=false --json && npm install onnxruntime-node`",
      );
      return undefined;
    },
  );
  return ortNode;
}

let webgpuMissing: string | undefined;

/**
 * Dawn reports a machine without a usable GPU only when a session asks for one; then the CPU
 * runs it, with one warning per process (TENSLORA_EP=webgpu should not fail where there is no GPU).
 */
async function createSession(ort: OrtNode, model: string | Uint8Array, options: Ort.InferenceSession.SessionOptions): Promise<Ort.InferenceSession> {
  const eps = options.executionProviders as string[];
  const create = (o: Ort.InferenceSession.SessionOptions) =>
    typeof model === "string" ? ort.InferenceSession.create(model, o) : ort.InferenceSession.create(model, o);
  if (!eps.includes("webgpu")) return create(options);
  const cpuOnly = { ...options, executionProviders: eps.filter((e) => e !== "webgpu") };
  if (webgpuMissing) return create(cpuOnly);
  try {
    return await create(options);
  } catch (e) {
    const message = (e as Error).message;
    if (!/WebGPU adapter|No supported adapters/i.test(message)) throw e;
    webgpuMissing = message.slice(message.lastIndexOf(":") + 1).trim();
    console.warn(`tenslora: warning: TENSLORA_EP asks for webgpu but Dawn found no GPU adapter (${webgpuMissing}); running on the CPU`);
    return create(cpuOnly);
  }
}

/** Compile a graph into an onnxruntime-node session (CPU, or the providers TENSLORA_EP names). */
export async function compile(graph: Graph, opts: CompileOptions = {}): Promise<OrtCompiledGraph> {
  const outputs = opts.outputs ?? [...graph.outputs.keys()];
  const ort = await loadOrtNode();
  if (!ort) return compileWeb(graph, "wasm", outputs);
  const bytes = exportModel(graph, { outputs, store: opts.store, fuse: opts.fuse });
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    // more threads than cores only contend (and an absurd count makes ONNX Runtime abort allocating them)
    intraOpNumThreads: Math.min(opts.threads ?? availableParallelism(), availableParallelism()),
    interOpNumThreads: 1,
    graphOptimizationLevel: opts.optimization ?? "extended",
    executionProviders: opts.executionProviders ?? defaultProviders(),
    enableProfiling: opts.profilePrefix !== undefined,
    profileFilePrefix: opts.profilePrefix,
    logSeverityLevel: 3,
    enableMemPattern: opts.memPattern ?? false,
    enableCpuMemArena: opts.arena ?? true,
    extra: { session: { intra_op: { allow_spinning: opts.spin ? "1" : "0" }, ...(opts.prepack === false ? { disable_prepacking: "1" } : {}) } },
  };
  let model: string | Uint8Array = bytes;
  if (opts.quantize) model = quantized(bytes, opts.store);
  else if (opts.store) {
    // External data is resolved relative to the model file, so the model lives beside the weights.
    model = opts.store.writeModel(`${graph.hash()}-${outputs.length}.onnx`, bytes);
  }
  const session = await createSession(ort, model, sessionOptions);
  return new OrtCompiledGraph(session, ort.Tensor as unknown as TensorCtor, graph, outputs);
}
