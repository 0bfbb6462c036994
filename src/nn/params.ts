/**
 * Where a model's weights enter a graph. Whether a weight is trainable is a property of the
 * weight, not of the model code: frozen weights become initializers, trainable ones graph
 * inputs fed (and differentiated) every step. The same model code serves full fine-tuning,
 * a linear probe, LoRA and every TensLoRA construction.
 */
import { ConfigError, ShapeError } from "../errors.ts";
import { type QuantWeight, add } from "../ir/builder.ts";
import { linear } from "../ir/functional.ts";
import type { Graph, Value } from "../ir/graph.ts";
import type { QuantizedMatrix } from "../tensor/quantize.ts";
import { quantizedLinear, quantizedWeight } from "./quantized-linear.ts";

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export type WeightMap = Map<string, Tensor>;

/** Frozen linear weights held quantized (a quantized base), by weight name. */
export type QuantizedWeights = ReadonlyMap<string, QuantizedMatrix>;

export class ParamScope {
  readonly #cache = new Map<string, Value>();
  readonly #quantCache = new Map<string, QuantWeight>();
  readonly #unpackedCache = new Map<string, Value>();
  /** Trainable parameters in the order they were first used. */
  readonly trainable: { name: string; value: Value }[] = [];

  constructor(
    readonly graph: Graph,
    readonly weights: WeightMap,
    readonly isTrainable: (name: string) => boolean = () => false,
    readonly quantized: QuantizedWeights = new Map(),
  ) {}

  /** y = x Wᵀ (+ bias) of the linear layer at `path`, from its quantized codes where the base holds them so. */
  linear(x: Value, path: string): Value {
    const name = `${path}.weight`;
    const bias = () => (this.has(`${path}.bias`) ? this.get(`${path}.bias`) : undefined);
    const q = this.quantized.get(name);
    // the weight is read before the bias: trainable parameters are fed in first-use order
    if (!q) return linear(x, this.get(name), bias());
    if (this.isTrainable(name))
      throw new ConfigError(`weight "${name}" is held quantized and cannot be trained; train it on a float32 base (--base-dtype f32)`);
    let w = this.#quantCache.get(name);
    if (!w) {
      w = quantizedWeight(this.graph, name, q);
      this.#quantCache.set(name, w);
    }
    const y = quantizedLinear(x, w, q);
    const b = bias();
    return b ? add(y, b) : y;
  }

  /** The graph value of weight `name`. */
  get(name: string): Value {
    const hit = this.#cache.get(name);
    if (hit) return hit;
    const w = this.#tensor(name);
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

  /**
   * Frozen weight `name` declared with a leading unit axis ([1, ...shape], the same bytes), for a
   * matrix ONNX Runtime should multiply by as it is stored: it pre-packs a constant 2-D MatMul
   * operand into one more copy per layout its consumers read, and packs no 3-D one. Undefined for
   * a trainable weight (a graph input, never packed).
   */
  unpacked(name: string): Value | undefined {
    if (this.isTrainable(name)) return undefined;
    const hit = this.#unpackedCache.get(name);
    if (hit) return hit;
    const w = this.#tensor(name);
    const v = this.graph.initializer(name, w.data, [1, ...w.shape]);
    this.#unpackedCache.set(name, v);
    return v;
  }

  has(name: string): boolean {
    return this.weights.has(name);
  }

  #tensor(name: string): Tensor {
    const w = this.weights.get(name);
    if (w) return w;
    if (this.quantized.has(name)) {
      throw new ConfigError(`weight "${name}" is held quantized and this model reads it outside a linear layer; load the model with --base-dtype f32`);
    }
    const near = [...this.weights.keys()].filter((k) => k.endsWith(name.split(".").at(-1)!)).slice(0, 3);
    throw new ShapeError(`weight "${name}" is not loaded${near.length ? ` (similar: ${near.join(", ")})` : ""}`);
  }
}
