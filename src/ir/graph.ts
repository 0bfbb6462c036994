/**
 * The graph IR: values in static single assignment, nodes appended in topological order.
 * A value knows its graph, so functional code (`add(a, b)`) needs no builder argument.
 */
import { ShapeError, internal } from "../errors.ts";
import { type DType, type Shape, shapeToString, shapesEqual } from "./dtype-shape.ts";
import { inferRules, type TypeInfo } from "./infer.ts";
import { Hasher } from "./hash.ts";
import { Op, type OpParams } from "./ops.ts";
import type { VjpRegion } from "./custom-vjp.ts";
import type { CheckpointRegion } from "./checkpoint.ts";

export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

/** A node's output in a Graph, with its dtype and (possibly symbolic) shape; ops take and return Values. */
export class Value {
  /** The node that computes this value; undefined for inputs and initializers. */
  producer: Node | undefined;
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly name: string | undefined,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  /** The value's name, dtype and shape, for messages. */
  toString(): string {
    return `${this.name ?? `v${this.id}`}:${this.dtype}${shapeToString(this.shape)}`;
  }
}

export interface Node<O extends Op = Op> {
  readonly op: O;
  readonly inputs: Value[];
  readonly outputs: Value[];
  readonly params: OpParams<O>;
}

export interface Initializer {
  readonly value: Value;
  readonly data: HostData;
}

/** A computation graph of typed, shaped values: what models build, autodiff differentiates and the ONNX lowering exports. */
export class Graph {
  readonly nodes: Node[] = [];
  /** Values fed at run time: batches and trainable parameters. */
  readonly inputs: Value[] = [];
  /** Frozen weights, lowered to ONNX initializers. */
  readonly initializers = new Map<Value, Initializer>();
  readonly outputs = new Map<string, Value>();
  /** Subgraphs with their own gradient rule (custom-vjp.ts). */
  readonly vjpRegions: VjpRegion[] = [];
  /** Subgraphs recomputed in the backward pass instead of kept (checkpoint.ts). */
  readonly checkpoints: CheckpointRegion[] = [];
  #nextId = 0;
  #substitute: ReadonlyMap<Value, Value> | undefined;
  #names = new Set<string>();

  /** Declare a graph input fed at run time. */
  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.#named(name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** Add a constant tensor (a frozen weight) to the graph. */
  initializer(name: string, data: HostData, shape: readonly number[], dtype: DType = "float32"): Value {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) {
      throw new ShapeError(`initializer "${name}": ${data.length} elements do not fill shape ${shapeToString(shape)} (${n})`);
    }
    const v = this.#named(name, dtype, shape);
    this.initializers.set(v, { value: v, data });
    return v;
  }

  /** Name a value as a graph output. */
  output(name: string, value: Value): void {
    if (value.graph !== this) internal(`output "${name}" belongs to another graph`);
    if (this.outputs.has(name)) throw new ShapeError(`graph output "${name}" is already defined`);
    this.outputs.set(name, value);
  }

  /** Append a node; its output types come from the op's inference rule. */
  bind<O extends Op>(op: O, inputs: Value[], params: OpParams<O>): Value[] {
    for (const x of inputs) if (x.graph !== this) internal(`${op}: input ${x} belongs to another graph`);
    const sub = this.#substitute;
    if (sub) inputs = inputs.map((x) => sub.get(x) ?? x);
    const types = inferRules[op](inputs, params as never);
    const outputs = types.map((t) => this.#value(t));
    const node: Node<O> = { op, inputs, outputs, params };
    for (const o of outputs) o.producer = node;
    this.nodes.push(node);
    return outputs;
  }

  /**
   * Run `fn` with every node it appends reading `map.get(x)` in place of an input x found in `map`:
   * gradient rules written against a region's values then read the region's recomputed copies.
   */
  withSubstitution<T>(map: ReadonlyMap<Value, Value>, fn: () => T): T {
    const outer = this.#substitute;
    this.#substitute = map;
    try {
      return fn();
    } finally {
      this.#substitute = outer;
    }
  }

  /** Whether a value is a constant of the graph (its gradient is not needed). */
  isInitializer(v: Value): boolean {
    return this.initializers.has(v);
  }

  /** A readable listing, one node a line, in ANF. */
  toString(): string {
    const lines: string[] = [];
    for (const v of this.inputs) lines.push(`input ${v}`);
    for (const { value } of this.initializers.values()) lines.push(`const ${value}`);
    for (const n of this.nodes) {
      const p = paramsToString(n.params as Record<string, unknown>);
      lines.push(`${n.outputs.join(", ")} = ${n.op}${p}(${n.inputs.map((x) => x.name ?? `v${x.id}`).join(", ")})`);
    }
    for (const [name, v] of this.outputs) lines.push(`output ${name} = ${v.name ?? `v${v.id}`}`);
    return lines.join("\n");
  }

  /** A structural hash (ops, params, shapes, names; not weight values) for caching sessions. */
  hash(): string {
    const h = new Hasher().update(this.toString());
    // Constant values are part of the computation (toString shows only their length); weights are not.
    for (const n of this.nodes) {
      if (n.op === Op.Constant) {
        const { data } = n.params as OpParams<Op.Constant>;
        h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      }
    }
    return h.digest();
  }

  #value(t: TypeInfo, name?: string): Value {
    return new Value(this, this.#nextId++, t.dtype, t.shape, name);
  }

  #named(name: string, dtype: DType, shape: Shape): Value {
    if (this.#names.has(name)) throw new ShapeError(`graph value name "${name}" is used twice`);
    this.#names.add(name);
    return this.#value({ dtype, shape }, name);
  }
}

function paramsToString(p: Record<string, unknown>): string {
  const parts = Object.entries(p).map(([k, v]) => {
    if (ArrayBuffer.isView(v)) return `${k}=<${(v as unknown as ArrayLike<unknown>).length}>`;
    return `${k}=${Array.isArray(v) ? `[${v.join(",")}]` : String(v)}`;
  });
  return parts.length ? `{${parts.join(" ")}}` : "";
}

/** Re-infer every node's output types and compare with the recorded ones (run after each pass). */
/** Each value's consuming nodes, in graph order. */
export function consumersOf(g: Graph): Map<Value, Node[]> {
  const consumers = new Map<Value, Node[]>();
  for (const n of g.nodes) {
    for (const x of n.inputs) {
      const list = consumers.get(x);
      if (list) list.push(n);
      else consumers.set(x, [n]);
    }
  }
  return consumers;
}

/** Re-infer every node's dtype and shape and throw on the first mismatch, to catch a malformed graph before lowering. */
export function typecheck(graph: Graph): void {
  for (const n of graph.nodes) {
    const types = inferRules[n.op](n.inputs, n.params as never);
    if (types.length !== n.outputs.length) internal(`${n.op}: ${types.length} inferred outputs, ${n.outputs.length} recorded`);
    types.forEach((t, i) => {
      const o = n.outputs[i];
      if (t.dtype !== o.dtype || !shapesEqual(t.shape, o.shape)) {
        internal(`${n.op}: output ${i} recorded as ${o} but inferred ${t.dtype}${shapeToString(t.shape)}`);
      }
    });
  }
}
