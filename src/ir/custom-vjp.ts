/**
 * A gradient rule for a whole subgraph, as jax.custom_vjp gives one for a function: a composite
 * states the derivative of the region from `inputs` to `outputs` in a cheaper form than the chain
 * of its primitives' rules (fewer full-size passes). The region's nodes stay ordinary primitives,
 * so lowering and inference are unchanged; only differentiation (src/autodiff/vjp.ts) reads this.
 */
import { internal } from "../errors.ts";
import type { Value } from "./graph.ts";

/** Cotangents of the region's inputs (undefined where not needed) from those of its outputs. */
export type RegionRule = (cts: (Value | undefined)[], needs: boolean[]) => (Value | undefined)[];

export interface VjpRegion {
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly rule: RegionRule;
}

/**
 * Declare that `outputs` are computed from `inputs` (and from values no gradient flows through,
 * such as constants, frozen weights or dropout masks) with the derivative `rule`.
 */
export function customVjp(inputs: Value[], outputs: Value[], rule: RegionRule): void {
  const g = outputs[0]?.graph ?? internal("customVjp: a region needs at least one output");
  for (const v of [...inputs, ...outputs]) if (v.graph !== g) internal(`customVjp: ${v} belongs to another graph`);
  g.vjpRegions.push({ inputs, outputs, rule });
}
