/**
 * Activation checkpointing, as torch.utils.checkpoint gives it: the values a region computes from
 * `inputs` are not kept for the backward pass; differentiation (src/autodiff/checkpoint.ts)
 * computes them again from the inputs when the backward pass reaches the region. The region's
 * nodes stay ordinary primitives, so lowering and inference are unchanged.
 */
import { internal } from "../errors.ts";
import * as b from "./builder.ts";
import type { Value } from "./graph.ts";

export interface CheckpointRegion {
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
}

/**
 * Declare that `outputs` are recomputed from `inputs` in the backward pass. Values the region reads
 * that do not depend on `inputs` (weights, masks, position tables) are kept, not recomputed.
 */
export function checkpoint(inputs: Value[], outputs: Value[]): void {
  const g = outputs[0]?.graph ?? internal("checkpoint: a region needs at least one output");
  for (const v of [...inputs, ...outputs]) if (v.graph !== g) internal(`checkpoint: ${v} belongs to another graph`);
  g.checkpoints.push({ inputs, outputs });
}

/**
 * A scalar zero read from `after`'s first element, which ONNX Runtime cannot fold: a value
 * recomputed as f(x + zero) can neither be merged with the forward pass's f(x) by
 * common-subexpression elimination nor be scheduled before `after` exists (in the backward pass,
 * a cotangent), which would keep it alive as long as the value it replaces.
 */
export function zeroAfter(after: Value): Value {
  const first = b.slice(b.reshape(after, [-1]), 0, 0, 1);
  // e < e is false for every e, NaN included
  return b.where(b.less(first, first), first, 0);
}
