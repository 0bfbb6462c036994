/**
 * Every adapter method by construction name: LoRA and the seven TensLoRA constructions, one
 * registry. A new method is its own file and a line here.
 */
import { type Construction, type ModelShape, TENSLORA_CONSTRUCTIONS } from "./constructions.ts";
import { DEFAULT_FACTORIZATION, type Factorization } from "./factorizations/index.ts";
import { LORA } from "./lora.ts";
import type { AdapterMethod, NormalizedRanks } from "./method.ts";
import { tensorMethod } from "./tensor-method.ts";

export type { AdapterMethod, NormalizedRanks };

/** Every construction's method: LoRA's entry and one TensLoRA entry per stacking. */
export const ADAPTER_METHODS: Readonly<Record<Construction, AdapterMethod>> = {
  lora: LORA,
  ...(Object.fromEntries(TENSLORA_CONSTRUCTIONS.map((c) => [c, tensorMethod(c)])) as Record<(typeof TENSLORA_CONSTRUCTIONS)[number], AdapterMethod>),
};

/** The method budgets are counted in: an "iso-LoRA r" budget is LoRA's parameter count at rank r. */
export const REFERENCE_METHOD: Construction = "lora";

/** The method of construction `c` (parsed at the boundary: parseConstruction). */
export function methodOf(c: Construction): AdapterMethod {
  return ADAPTER_METHODS[c];
}

/**
 * The ranks of one tensor from a single rank (the same everywhere, the paper's "isorank") or a
 * list in the factorisation's order (Tucker: one per mode in `modeNames` order; CP: one R; TT: the
 * bond ranks). `lora` takes one rank; a rank above min(dIn, dOut) warns. Legal but wasteful ranks
 * are reported as warnings (see each factorisation).
 */
export function normalizeRanks(
  c: Construction,
  shape: ModelShape,
  ranks: number | readonly number[],
  factorization: Factorization = DEFAULT_FACTORIZATION,
): NormalizedRanks {
  return methodOf(c).normalizeRanks(shape, ranks, factorization);
}
