/**
 * Graph → ONNX ModelProto. Only nodes that some output needs are emitted. Large frozen weights go
 * to an external data file shared by every graph of a model (a `WeightStore`), so a train graph and
 * an eval graph memory-map one copy instead of each embedding its own.
 */
import { ShapeError, internal } from "../errors.ts";
import { type DType, type Dim, concrete, dimTerms } from "../ir/dtype-shape.ts";
import type { Graph, HostData, Node, Value } from "../ir/graph.ts";
import { lowerGemmAdd, planGemmFusions } from "./fuse.ts";
import { lowerRules, type LowerCtx } from "./lower.ts";
import { type NodeProto, OPSET, type TensorProto, externalTensorProto, int64Tensor, node, onnx, tensorProto, valueInfo } from "./proto.ts";

/** Weights at least this large (bytes) are written to the external file instead of the model proto. */
const EXTERNAL_MIN_BYTES = 64 * 1024;

/** Compute dim `d` into the int64 [1] tensor `out`: symbols from the first graph input that has them, sums by Add. */
function emitDim(graph: Graph, ctx: LowerCtx, d: Dim, out: string): void {
  const factor = (f: Dim) => {
    if (typeof f === "number") return ctx.constant((nm) => int64Tensor(nm, [f]));
    for (const v of graph.inputs) {
      const axis = v.shape.indexOf(f);
      if (axis < 0) continue;
      const name = ctx.fresh("dim");
      ctx.emit(node("Shape", [ctx.name(v)], [name], { start: axis, end: axis + 1 }));
      return name;
    }
    throw new ShapeError(`dim "${f}" is in no graph input's shape, so its run-time value is unknown; declare an input with it`);
  };
  const fold = (names: string[], op: string) =>
    names.reduce((acc, x) => {
      const next = ctx.fresh(op);
      ctx.emit(node(op, [acc, x], [next]));
      return next;
    });
  const sum = fold(
    dimTerms(d).map((t) => fold(t.map(factor), "Mul")),
    "Add",
  );
  ctx.emit(node("Identity", [sum], [out]));
}

/** Nodes needed for the outputs, in graph order. */
function liveNodes(graph: Graph, outputs: Value[]): Node[] {
  const need = new Set<Value>(outputs);
  const keep = new Set<Node>();
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i];
    if (n.outputs.some((o) => need.has(o))) {
      keep.add(n);
      for (const x of n.inputs) need.add(x);
    }
  }
  return graph.nodes.filter((n) => keep.has(n));
}

/** Where large initializers live outside the model proto: the file and byte range of each (writing it there on first use). */
export interface ExternalWeights {
  /** Initializers at least this many bytes go to the store (default 64 KiB); smaller ones stay inline. */
  readonly minBytes?: number;
  locate(data: HostData): { file: string; offset: number; length: number };
}

export interface ExportOptions {
  /** Names of graph outputs to include (default: all). */
  outputs?: string[];
  /** Write large initializers to this store; without it every weight is inlined. */
  store?: ExternalWeights;
  /** Lower Add(MatMul(A, W), C) as one Gemm with C (default false; see fuse.ts for when it pays). */
  fuse?: boolean;
}

/** Lower a graph to an ONNX model (protobuf bytes) that ONNX Runtime and other ONNX tools load. */
export function exportModel(graph: Graph, opts: ExportOptions = {}): Uint8Array {
  const outNames = opts.outputs ?? [...graph.outputs.keys()];
  const outs = outNames.map((n) => graph.outputs.get(n) ?? internal(`no graph output "${n}"`));
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let fresh = 0;
  const dims = new Map<string, string>();
  const views: { name: string; v: Value; dataType: number; dims: readonly number[]; derive?: { key: string; make: (data: HostData) => HostData } }[] = [];
  // a node computing an output writes it under the output's name: an Identity to a graph output
  // is a copy ONNX Runtime cannot elide (a decoder step's KV cache, every step)
  const produced = new Set(graph.nodes.flatMap((n) => n.outputs));
  const direct = new Map<Value, string>();
  outNames.forEach((name, i) => {
    if (produced.has(outs[i]) && !direct.has(outs[i])) direct.set(outs[i], name);
  });
  const ctx: LowerCtx = {
    name: (v) => direct.get(v) ?? v.name ?? `v${v.id}`,
    // the separator keeps "qlo" + 1809 and "qlo1" + 809 apart
    fresh: (prefix) => `_${prefix}_${fresh++}`,
    emit: (n) => void nodes.push(n),
    constant: (make) => {
      const t = make(`_c${fresh++}`);
      inits.push(t);
      return t.name;
    },
    view: (v, dataType, viewDims) => {
      const name = ctx.fresh(`${v.name ?? "init"}_as${dataType}`);
      views.push({ name, v, dataType, dims: viewDims });
      return name;
    },
    derived: (v, key, dataType, derivedDims, make) => {
      const name = ctx.fresh(`${v.name ?? "init"}_${key}`);
      views.push({ name, v, dataType, dims: derivedDims, derive: { key, make } });
      return name;
    },
    dim: (d) => {
      const key = String(d);
      let name = dims.get(key);
      if (!name) {
        name = ctx.fresh("dim");
        emitDim(graph, ctx, d, name);
        dims.set(key, name);
      }
      return name;
    },
  };
  const live = liveNodes(graph, outs);
  const plan = opts.fuse ? planGemmFusions(live, outs) : undefined;
  for (const n of live) {
    if (plan?.skip.has(n)) continue;
    const fusion = plan?.fused.get(n);
    if (fusion) lowerGemmAdd(ctx, fusion);
    else lowerRules[n.op](ctx, n as never);
  }
  outNames.forEach((name, i) => {
    if (graph.inputs.includes(outs[i]) && outs[i].name === name) throw new ShapeError(`output "${name}" is a graph input`);
    if (direct.get(outs[i]) !== name) nodes.push(node("Identity", [ctx.name(outs[i])], [name]));
  });
  const initializer = (name: string, dataType: DType | number, dims: readonly number[], data: HostData) => {
    if (opts.store && data.byteLength >= (opts.store.minBytes ?? EXTERNAL_MIN_BYTES)) {
      const { file, offset, length } = opts.store.locate(data);
      inits.push(externalTensorProto(name, dataType, dims, file, offset, length));
    } else {
      inits.push(tensorProto(name, dataType, dims, data));
    }
  };
  // only initializers a node reads: one read only through views would be loaded for nothing
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  for (const [v, { data }] of graph.initializers) {
    if (read.has(v.name!)) initializer(v.name!, v.dtype, concrete(v.shape, `initializer ${v.name}`), data);
  }
  // derived data lives as long as this export and the store keep it: one array per source and key
  // for the products of this graph, computed again by the next export
  const derived = new Map<HostData, Map<string, HostData>>();
  for (const { name, v, dataType, dims, derive } of views) {
    const data = graph.initializers.get(v)?.data ?? internal(`view of "${v.name}", which is not an initializer`);
    if (!derive) {
      initializer(name, dataType, dims, data);
      continue;
    }
    let byKey = derived.get(data);
    if (!byKey) derived.set(data, (byKey = new Map()));
    let out = byKey.get(derive.key);
    if (!out) byKey.set(derive.key, (out = derive.make(data)));
    initializer(name, dataType, dims, out);
  }
  const model = onnx.ModelProto.create({
    irVersion: 10,
    producerName: "tenslora",
    opsetImport: [
      { domain: "", version: OPSET },
      { domain: "com.microsoft", version: 1 },
    ],
    graph: {
      name: "tenslora",
      node: nodes,
      initializer: inits,
      input: graph.inputs.map((v) => valueInfo(v.name!, v.dtype, v.shape)),
      output: outNames.map((name, i) => valueInfo(name, outs[i].dtype, outs[i].shape)),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
