/**
 * Where a model's weights enter a graph. Whether a weight is trainable is a property of the
 * weight, not of the model code: frozen weights become initializers, trainable ones graph
 * inputs fed (and differentiated) every step. The same model code serves full fine-tuning,
 * a linear probe, LoRA and every TensLoRA construction.
 */
import { ShapeError } from "../errors.ts";
import type { Graph, Value } from "../ir/graph.ts";

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export type WeightMap = Map<string, Tensor>;

export class ParamScope {
  readonly #cache = new Map<string, Value>();
  /** Trainable parameters in the order they were first used. */
  readonly trainable: { name: string; value: Value }[] = [];

  constructor(
    readonly graph: Graph,
    readonly weights: WeightMap,
    readonly isTrainable: (name: string) => boolean = () => false,
  ) {}

  /** The graph value of weight `name`. */
  get(name: string): Value {
    const hit = this.#cache.get(name);
    if (hit) return hit;
    const w = this.weights.get(name);
    if (!w) {
      const near = [...this.weights.keys()].filter((k) => k.endsWith(name.split(".").at(-1)!)).slice(0, 3);
      throw new ShapeError(`weight "${name}" is not loaded${near.length ? ` (similar: ${near.join(", ")})` : ""}`);
    }
    let v: Value;
    if (this.isTrainable(name)) {
      v = this.graph.input(name, "float32", w.shape);
      this.trainable.push({ name, value: v });
    } else {
      v = this.graph.initializer(name, w.data, w.shape);
    }
    this.#cache.set(name, v);
    return v;
  }

  has(name: string): boolean {
    return this.weights.has(name);
  }
}
