/**
 * The only module that imports onnxruntime. A graph is compiled once per shape family into an
 * InferenceSession; feeds are validated by name, dtype and shape before each run, and every
 * problem is reported at once.
 */
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { FeedError, UseAfterDisposeError } from "../errors.ts";
import type { DType, Shape } from "../ir/dtype-shape.ts";
import type { Graph } from "../ir/graph.ts";
import { type WeightStore, exportModel } from "../onnx/export.ts";
import type { HostArray, HostTensor } from "./host.ts";

export type OptimizationLevel = "disabled" | "basic" | "extended" | "all";

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
}

const TYPE_OF: Record<DType, ort.Tensor.Type> = {
  float32: "float32",
  float64: "float64",
  int64: "int64",
  int32: "int32",
  bool: "bool",
};

interface InputSpec {
  name: string;
  dtype: DType;
  shape: Shape;
}

/** The execution providers a session asks for unless told otherwise: TENSLORA_EP's list, then CPU. */
export function defaultProviders(): string[] {
  const ep = process.env.TENSLORA_EP;
  return ep ? [...ep.split(","), "cpu"] : ["cpu"];
}

export class CompiledGraph {
  readonly inputs: InputSpec[];
  readonly outputNames: string[];
  #session: ort.InferenceSession | undefined;

  private constructor(session: ort.InferenceSession, inputs: InputSpec[], outputs: string[]) {
    this.#session = session;
    this.inputs = inputs;
    this.outputNames = outputs;
  }

  static async create(graph: Graph, opts: CompileOptions = {}): Promise<CompiledGraph> {
    const outputs = opts.outputs ?? [...graph.outputs.keys()];
    const bytes = exportModel(graph, { outputs, store: opts.store, fuse: opts.fuse });
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads ?? availableParallelism(),
      interOpNumThreads: 1,
      graphOptimizationLevel: opts.optimization ?? "extended",
      executionProviders: opts.executionProviders ?? defaultProviders(),
      enableProfiling: opts.profilePrefix !== undefined,
      profileFilePrefix: opts.profilePrefix,
      logSeverityLevel: 3,
      enableMemPattern: opts.memPattern ?? false,
      extra: { session: { intra_op: { allow_spinning: opts.spin ? "1" : "0" }, ...(opts.prepack === false ? { disable_prepacking: "1" } : {}) } },
    };
    let session: ort.InferenceSession;
    if (opts.store) {
      // External data is resolved relative to the model file, so the model lives beside the weights.
      const path = join(opts.store.dir, `${graph.hash()}-${outputs.length}.onnx`);
      writeFileSync(path, bytes);
      session = await ort.InferenceSession.create(path, sessionOptions);
    } else {
      session = await ort.InferenceSession.create(bytes, sessionOptions);
    }
    const inputs = graph.inputs.map((v) => ({ name: v.name!, dtype: v.dtype, shape: v.shape }));
    return new CompiledGraph(session, inputs, outputs);
  }

  /** Check every feed against the graph's inputs; one error lists every problem. */
  validate(feeds: Record<string, HostTensor>): void {
    const problems: string[] = [];
    const expected = new Set(this.inputs.map((i) => i.name));
    const missing = this.inputs.filter((i) => !(i.name in feeds)).map((i) => i.name);
    const extra = Object.keys(feeds).filter((k) => !expected.has(k));
    if (missing.length) problems.push(`missing inputs: ${missing.join(", ")}`);
    if (extra.length) problems.push(`unexpected inputs: ${extra.join(", ")} (the graph takes ${[...expected].join(", ")})`);
    const symbols = new Map<string, number>();
    for (const spec of this.inputs) {
      const t = feeds[spec.name];
      if (!t) continue;
      if (t.dtype !== spec.dtype) problems.push(`${spec.name}: dtype ${t.dtype}, expected ${spec.dtype}`);
      const ok =
        t.shape.length === spec.shape.length &&
        spec.shape.every((d, i) => {
          if (typeof d === "number") return d === t.shape[i];
          const seen = symbols.get(d);
          symbols.set(d, seen ?? t.shape[i]);
          return seen === undefined || seen === t.shape[i];
        });
      if (!ok) problems.push(`${spec.name}: shape [${t.shape}], expected [${spec.shape}]`);
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (t.data.length !== n) problems.push(`${spec.name}: ${t.data.length} values for shape [${t.shape}]`);
    }
    if (problems.length) throw new FeedError(`bad feeds: ${problems.join("; ")}`);
  }

  /** Run the graph. `into` may hold preallocated output buffers (ORT writes into them). */
  async run(feeds: Record<string, HostTensor>, into: Record<string, HostTensor> = {}): Promise<Record<string, HostTensor>> {
    const session = this.#live();
    this.validate(feeds);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrt(t);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of this.outputNames) fetches[name] = into[name] ? toOrt(into[name]) : null;
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await session.run(ortFeeds, fetches);
    } catch (e) {
      const summary = Object.entries(feeds)
        .map(([k, t]) => `${k}:${t.dtype}[${t.shape}]`)
        .join(", ");
      console.error(`onnxruntime run failed; feeds: ${summary}`);
      throw e;
    }
    const result: Record<string, HostTensor> = {};
    for (const name of this.outputNames) {
      const t = out[name];
      // ORT filled a preallocated buffer in place but hands back a copy; return the caller's buffer.
      result[name] = into[name] ?? { dtype: t.type as DType, shape: [...t.dims], data: t.data as HostArray };
    }
    return result;
  }

  /** End the profile started by `profilePrefix`; returns the written file's path. */
  endProfiling(): void {
    this.#live().endProfiling();
  }

  dispose(): void {
    void this.#session?.release();
    this.#session = undefined;
  }

  get disposed(): boolean {
    return this.#session === undefined;
  }

  #live(): ort.InferenceSession {
    if (!this.#session) throw new UseAfterDisposeError("this compiled graph was disposed; compile it again");
    return this.#session;
  }
}

function toOrt(t: HostTensor): ort.Tensor {
  const data = t.dtype === "bool" ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length) : t.data;
  return new ort.Tensor(TYPE_OF[t.dtype], data as never, t.shape);
}

export function compile(graph: Graph, opts?: CompileOptions): Promise<CompiledGraph> {
  return CompiledGraph.create(graph, opts);
}
