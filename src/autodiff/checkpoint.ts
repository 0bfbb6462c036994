/**
 * Which checkpoint regions (src/ir/checkpoint.ts) the engine recomputes, and the recomputation.
 * A region's interior is every node on a path from its inputs to its outputs. A region whose
 * interior values other than its outputs are also read outside it (by a node that needs them
 * kept anyway), or that shares nodes with an earlier region without containing it whole, is
 * differentiated as it stands: exact, it only keeps its activations. A region that contains
 * earlier ones (a checkpointed layer around a composite's own region) replaces them: its
 * recomputation recomputes theirs.
 */
import * as b from "../ir/builder.ts";
import { type CheckpointRegion, zeroAfter } from "../ir/checkpoint.ts";
import { isFloat } from "../ir/dtype-shape.ts";
import { type Graph, type Node, type Value, consumersOf } from "../ir/graph.ts";
import { Op } from "../ir/ops.ts";

export interface PlannedCheckpoint {
  region: CheckpointRegion;
  /** The nodes recomputed, in graph order. */
  interior: Node[];
}

/** Interior node → its region, for the regions of `g` that can be recomputed. */
export function planCheckpoints(g: Graph): Map<Node, PlannedCheckpoint> {
  const plan = new Map<Node, PlannedCheckpoint>();
  if (g.checkpoints.length === 0) return plan;
  const consumers = consumersOf(g);
  for (const region of g.checkpoints) {
    if (!region.inputs.some((x) => isFloat(x.dtype))) continue;
    // forward from the inputs; a dropout mask reads only its input's shape, and a second draw would differ
    const computed = new Set<Value>(region.inputs);
    for (const n of g.nodes) if (n.op !== Op.DropoutMask && n.inputs.some((x) => computed.has(x))) for (const o of n.outputs) computed.add(o);
    const inside = new Set<Node>();
    const stack = region.outputs.filter((o) => computed.has(o));
    while (stack.length) {
      const v = stack.pop()!;
      if (region.inputs.includes(v) || !computed.has(v) || !v.producer || inside.has(v.producer)) continue;
      inside.add(v.producer);
      stack.push(...v.producer.inputs);
    }
    const outputs = new Set(region.outputs);
    const leaks = [...inside].some((n) => n.outputs.some((o) => !outputs.has(o) && (consumers.get(o) ?? []).some((c) => !inside.has(c))));
    if (inside.size === 0 || leaks) continue;
    const nested = new Set([...inside].flatMap((n) => plan.get(n) ?? []));
    if ([...nested].some((p) => p.interior.some((n) => !inside.has(n)))) continue;
    const planned = { region, interior: g.nodes.filter((n) => inside.has(n)) };
    for (const n of inside) plan.set(n, planned);
  }
  return plan;
}

/**
 * Emit a copy of the region's interior computed from its inputs, and return original value →
 * copy. The inputs enter the copy plus `zeroAfter` the latest cotangent of the backward pass, so
 * the copy runs only once the backward pass reaches the region.
 */
export function recompute(g: Graph, planned: PlannedCheckpoint, after: Value): Map<Value, Value> {
  const zero = zeroAfter(after);
  const copy = new Map<Value, Value>();
  for (const x of planned.region.inputs) if (isFloat(x.dtype)) copy.set(x, b.add(x, b.cast(zero, x.dtype)));
  for (const n of planned.interior) {
    const outs = g.bind(
      n.op,
      n.inputs.map((x) => copy.get(x) ?? x),
      n.params,
    );
    n.outputs.forEach((o, k) => copy.set(o, outs[k]));
  }
  // rules that read an input or an output read the kept original (the forward pass's consumers
  // keep the outputs), so the copy of the last products is never computed
  for (const x of [...planned.region.inputs, ...planned.region.outputs]) copy.delete(x);
  return copy;
}
