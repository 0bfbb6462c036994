/**
 * Every adapter method by construction name: LoRA and the seven TensLoRA constructions, one
 * registry. A new method is its own file and a line here.
 */
import { type Construction, type ModelShape, TENSLORA_CONSTRUCTIONS, parseConstruction } from "./constructions.ts";
import type { Factorization } from "./factorizations/index.ts";
import { LORA } from "./lora.ts";
import type { AdapterMethod, NormalizedRanks } from "./method.ts";
import { tensorMethod } from "./tensor-method.ts";

export type { AdapterMethod, NormalizedRanks };

export const METHODS: Readonly<Record<Construction, AdapterMethod>> = {
  lora: LORA,
  ...(Object.fromEntries(TENSLORA_CONSTRUCTIONS.map((c) => [c, tensorMethod(c)])) as Record<(typeof TENSLORA_CONSTRUCTIONS)[number], AdapterMethod>),
};

/** The method budgets are counted in: an "iso-LoRA r" budget is LoRA's parameter count at rank r. */
export const REFERENCE_METHOD: Construction = "lora";

/** The method of construction `c` (a ConfigError listing the valid names for an unknown one). */
export function methodOf(c: Construction): AdapterMethod {
  return METHODS[parseConstruction(c)];
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
  factorization: Factorization = "tucker",
): NormalizedRanks {
  return methodOf(c).normalizeRanks(shape, ranks, factorization);
}

/**
 * Ranks no adapter should be built with (they add nothing at any size, and the core or factors
 * may not even fit in memory): LoRA above both sides of the matrix; see each factorisation.
 */
export function checkRankBounds(c: Construction, shape: ModelShape, ranks: readonly number[], factorization: Factorization = "tucker"): void {
  methodOf(c).checkRankBounds(shape, ranks, factorization);
}
