/**
 * Which custom-gradient regions (src/ir/custom-vjp.ts) the engine may apply for one `grad` call.
 * A region is replaced by its rule only when nothing outside it needs a cotangent of a value
 * inside it: a value of the region's interior that also reaches the loss by another path (say,
 * attention probabilities that a second loss term reads) makes the engine differentiate the
 * region node by node instead, which is exact, only slower.
 */
import { internal } from "../errors.ts";
import type { VjpRegion } from "../ir/custom-vjp.ts";
import { type Graph, type Node, type Value, consumersOf } from "../ir/graph.ts";

export interface ActiveRegion {
  region: VjpRegion;
  /** The region's earliest node: the engine reaches it last, when every output's cotangent is complete. */
  first: Node;
}

/** Interior node → its active region, for the regions of `g` the loss can use as a whole. */
export function planRegions(g: Graph, loss: Value, live: Set<Value>): Map<Node, ActiveRegion> {
  const plan = new Map<Node, ActiveRegion>();
  if (g.vjpRegions.length === 0) return plan;
  const order = new Map<Node, number>(g.nodes.map((n, i) => [n, i]));
  // values from which the loss is reachable
  const toLoss = new Set<Value>([loss]);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (n.outputs.some((o) => toLoss.has(o))) for (const x of n.inputs) toLoss.add(x);
  }
  const consumers = consumersOf(g);

  for (const region of g.vjpRegions) {
    const inputs = new Set(region.inputs);
    const interior = new Set<Node>();
    // walk back from the outputs to the inputs; values no gradient flows through are not followed
    const stack = [...region.outputs];
    while (stack.length) {
      const v = stack.pop()!;
      if (inputs.has(v) || !live.has(v)) continue;
      const p = v.producer ?? internal(`custom-gradient region reaches ${v}, which is not among its inputs`);
      if (interior.has(p)) continue;
      interior.add(p);
      stack.push(...p.inputs);
    }
    if (interior.size === 0 || [...interior].some((n) => !order.has(n) || plan.has(n))) continue;
    const outputs = new Set(region.outputs);
    const leaks = [...interior].some((n) =>
      n.outputs.some((o) => !outputs.has(o) && (consumers.get(o) ?? []).some((c) => !interior.has(c) && c.outputs.some((co) => toLoss.has(co)))),
    );
    if (leaks) continue;
    const first = [...interior].reduce((a, n) => (order.get(n)! < order.get(a)! ? n : a));
    // every input's cotangent must be complete before the engine reaches the input's producer
    if (region.inputs.some((x) => x.producer && order.get(x.producer)! > order.get(first)!)) continue;
    for (const n of interior) plan.set(n, { region, first });
  }
  return plan;
}
