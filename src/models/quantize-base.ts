/**
 * A quantized base: the frozen linear weights of a decoder held in float16 or block-wise in 8 or
 * 4 bits (the QLoRA setting), everything else (embeddings, norms, head, adapters) in float32.
 * Adapters see the same sites and shapes, so an adapter trained on a quantized base loads on the
 * float32 one.
 */
import { ConfigError } from "../errors.ts";
import type { Tensor, WeightMap } from "../nn/params.ts";
import { type QuantBits, type QuantizedMatrix, dequantizeMatrix, float16Matrix, quantizeMatrix } from "../tensor/quantize.ts";
import { FAMILIES, type LoadedModel } from "./assemble.ts";
import type { AnyFamily } from "./types.ts";

/** The dtypes `--base-dtype` takes for a decoder's frozen linear weights: float32, float16, or 8- or 4-bit block-quantized codes. */
export const BASE_DTYPES = ["f32", "f16", "int8", "int4"] as const;
/** One of `BASE_DTYPES`. */
export type BaseDType = (typeof BASE_DTYPES)[number];

const BITS: Record<Exclude<BaseDType, "f32" | "f16">, QuantBits> = { int8: 8, int4: 4 };

/** `v` as a base dtype, or a ConfigError naming `source` and the valid values. */
export function parseBaseDType(v: string, source = "--base-dtype"): BaseDType {
  if ((BASE_DTYPES as readonly string[]).includes(v)) return v as BaseDType;
  throw new ConfigError(`${source} must be one of ${BASE_DTYPES.join(", ")}, got "${v}"`);
}

/** The weight names a quantized base holds quantized: every linear site's weight matrix. */
export function quantizableWeights(model: Pick<LoadedModel, "family" | "config">): string[] {
  return model.family.linearSites(model.config).map((s: { path: string }) => `${s.path}.weight`);
}

/** Refuse a quantized base for a family whose forward reads linear weights outside ParamScope.linear (the encoders' MLPs). */
export function checkQuantizable(family: AnyFamily, dtype: BaseDType): void {
  if (dtype !== "f32" && !family.quantizableBase) {
    const types = Object.values(FAMILIES).filter((f) => Object.values(f.heads).some((h) => h.quantizableBase));
    throw new ConfigError(
      `--base-dtype ${dtype} is implemented for decoder models (${types.map((f) => f.modelType).join(", ")}); ${family.modelType} loads in float32: use --base-dtype f32`,
    );
  }
}

/**
 * `model` with its frozen linear weights quantized (a new LoadedModel; `model` is unchanged).
 * Decoders only: the encoders' MLPs read their weights outside the linear-layer path.
 */
export function withBaseDType(model: LoadedModel, dtype: BaseDType): LoadedModel {
  if ((model.baseDtype ?? "f32") === dtype) return model;
  if (model.baseDtype && model.baseDtype !== "f32") {
    throw new ConfigError(`the model is already held as ${model.baseDtype}; load it again to hold it as ${dtype}`);
  }
  if (dtype === "f32") return model;
  checkQuantizable(model.family, dtype);
  const weights: WeightMap = new Map(model.weights);
  const quantized = new Map<string, QuantizedMatrix>();
  for (const name of quantizableWeights(model)) {
    quantized.set(name, quantizeWeight(weights.get(name)!, dtype));
    weights.delete(name);
  }
  return { ...model, weights, quantized, baseDtype: dtype };
}

/** One weight matrix [out, in] held as `dtype`. */
export function quantizeWeight(t: Tensor, dtype: Exclude<BaseDType, "f32">): QuantizedMatrix {
  if (dtype === "f16") return float16Matrix(t.data, t.shape[0], t.shape[1]);
  return quantizeMatrix(t.data, t.shape[0], t.shape[1], BITS[dtype]);
}

/** Every weight in float32, the quantized ones dequantized (what merge and export write). */
export function floatWeights(model: LoadedModel): WeightMap {
  const out: WeightMap = new Map(model.weights);
  for (const [name, q] of model.quantized ?? []) out.set(name, { shape: [q.rows, q.cols], data: dequantizeMatrix(q) });
  return out;
}
