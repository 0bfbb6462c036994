/**
 * The runtime interface: what everything above the runtime sees. A backend (session.ts on
 * onnxruntime-node, session-web.ts on onnxruntime-web) compiles IR graphs into runnable graphs
 * that exchange host tensors; callers receive a `Runtime` and never name a backend.
 */
import type { DType, Shape } from "../ir/dtype-shape.ts";
import type { Graph } from "../ir/graph.ts";
import type { HostTensor } from "../tensor/host.ts";

/** A graph compiled for one shape family: fed and read by input/output name. */
export interface CompiledGraph {
  readonly inputs: readonly { name: string; dtype: DType; shape: Shape }[];
  readonly outputNames: readonly string[];
  /** Check every feed against the graph's inputs; one error lists every problem. */
  validate(feeds: Record<string, HostTensor>): void;
  /** Run the graph. `into` may hold preallocated output buffers the backend writes into. */
  run(feeds: Record<string, HostTensor>, into?: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  /** Release the runtime's session; the graph cannot run afterwards. */
  dispose(): void;
  readonly disposed: boolean;
}

/** Compiles the graphs of one model; `dispose` frees what they share (the frozen weights). */
export interface Compiler {
  /** Compile a graph; graphs of one compiler share one copy of the frozen weights. */
  compile(graph: Graph, opts?: { outputs?: string[]; threads?: number }): Promise<CompiledGraph>;
  /** Release what the compiler's graphs share (the weight file). */
  dispose(): void;
}

/** A backend as the library uses it: a compiler per model. */
export interface Runtime {
  /** "node-cpu", "web-wasm", "web-webgpu", …, for logs and notes. */
  readonly name: string;
  /**
   * Graphs of one compiler never live side by side: `train` releases the training session
   * around each evaluation and compiles it again after, so a backend that copies the frozen
   * weights into each session (onnxruntime-web on WebAssembly) holds them once, at the cost of a
   * session creation per evaluation.
   */
  readonly exclusiveSessions?: boolean;
  /** A compiler for one model's graphs. */
  compiler(): Compiler;
}
