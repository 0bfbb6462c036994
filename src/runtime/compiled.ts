/**
 * A compiled graph on either ONNX Runtime package (onnxruntime-node in session.ts,
 * onnxruntime-web in session-web.ts; both implement onnxruntime-common's API): feeds are
 * validated by name, dtype and shape before each run, and every problem is reported at once.
 */
import type { InferenceSession, Tensor } from "onnxruntime-common";
import { ConfigError, FeedError, UseAfterDisposeError } from "../errors.ts";
import type { DType, Shape } from "../ir/dtype-shape.ts";
import type { Graph } from "../ir/graph.ts";
import type { HostArray, HostTensor } from "../tensor/host.ts";
import type { CompiledGraph } from "./types.ts";

export type TensorCtor = new (type: Tensor.Type, data: never, dims: readonly number[]) => Tensor;

const TYPE_OF: Record<DType, Tensor.Type> = {
  float32: "float32",
  float64: "float64",
  int64: "int64",
  int32: "int32",
  bool: "bool",
  uint8: "uint8",
  float16: "float16",
};

interface InputSpec {
  name: string;
  dtype: DType;
  shape: Shape;
}

export class OrtCompiledGraph implements CompiledGraph {
  readonly inputs: InputSpec[];
  readonly outputNames: string[];
  #session: InferenceSession | undefined;
  readonly #Tensor: TensorCtor;

  constructor(session: InferenceSession, Tensor: TensorCtor, graph: Graph, outputs: string[]) {
    this.#session = session;
    this.#Tensor = Tensor;
    this.inputs = graph.inputs.map((v) => ({ name: v.name!, dtype: v.dtype, shape: v.shape }));
    this.outputNames = outputs;
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
    const ortFeeds: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrt(this.#Tensor, t);
    const fetches: Record<string, Tensor | null> = {};
    for (const name of this.outputNames) fetches[name] = into[name] ? toOrt(this.#Tensor, into[name]) : null;
    let out: InferenceSession.ReturnType;
    try {
      out = await session.run(ortFeeds, fetches);
    } catch (e) {
      // a WebGPU device without shader-f16 cannot run the kernels that read an f16 base's weights
      if (/requires f16 but the device does not support it/.test((e as Error).message)) {
        throw new ConfigError(
          "the WebGPU device has no float16 support (shader-f16), which an f16 base's weights need: use --base-dtype f32, int8 or int4 on it, or the CPU (TENSLORA_EP unset)",
        );
      }
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

  /** Release the ONNX Runtime session; the graph cannot run afterwards. */
  dispose(): void {
    void this.#session?.release();
    this.#session = undefined;
  }

  get disposed(): boolean {
    return this.#session === undefined;
  }

  #live(): InferenceSession {
    if (!this.#session) throw new UseAfterDisposeError("this compiled graph was disposed; compile it again");
    return this.#session;
  }
}

function toOrt(Tensor: TensorCtor, t: HostTensor): Tensor {
  const data = t.dtype === "bool" ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length) : t.data;
  return new Tensor(TYPE_OF[t.dtype], data as never, t.shape);
}
