/**
 * Reverse-mode differentiation over the IR. The engine does the cross-cutting work so each rule
 * states only a local derivative: it walks only nodes on a path from the targets to the loss,
 * sums broadcast cotangents back to input shapes, and accumulates fan-out.
 */
import { ShapeError, internal } from "../errors.ts";
import { add, constant, reduceSum, reshape } from "../ir/builder.ts";
import { broadcastAxes, isFloat, shapeToString, shapesEqual } from "../ir/dtype-shape.ts";
import { type Node, type Value, typecheck } from "../ir/graph.ts";
import type { Op } from "../ir/ops.ts";
import { vjpRules } from "./rules.ts";

/** Sum a cotangent over the axes that broadcasting added, back to `like`'s shape. */
export function sumToShape(ct: Value, like: Value): Value {
  if (shapesEqual(ct.shape, like.shape)) return ct;
  const axes = broadcastAxes(like.shape, ct.shape);
  const summed = axes.length ? reduceSum(ct, axes, true) : ct;
  return shapesEqual(summed.shape, like.shape) ? summed : reshape(summed, [...like.shape]);
}

/**
 * Gradients of the scalar `loss` with respect to each of `wrt` (graph inputs, initializers
 * or intermediate values), appended to the loss's graph. A target the loss does not depend on
 * gets a zero gradient.
 */
export function grad(loss: Value, wrt: Value[]): Value[] {
  const g = loss.graph;
  if (loss.shape.some((d) => d !== 1)) {
    throw new ShapeError(`grad: the loss must be a scalar, got ${loss}; reduce it first (e.g. reduceMean)`);
  }
  // Values that depend on a target (forward reachability).
  const live = new Set<Value>(wrt);
  const nodes = [...g.nodes];
  for (const n of nodes) if (n.inputs.some((x) => live.has(x))) for (const o of n.outputs) live.add(o);

  const cts = new Map<Value, Value>([[loss, constant(g, 1, [...loss.shape] as number[], loss.dtype)]]);
  const accumulate = (x: Value, ct: Value) => {
    const c = sumToShape(ct, x);
    if (!shapesEqual(c.shape, x.shape)) internal(`cotangent ${shapeToString(c.shape)} for ${x}`);
    const prev = cts.get(x);
    cts.set(x, prev ? add(prev, c) : c);
  };

  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const outCts = n.outputs.map((o) => cts.get(o));
    if (outCts.every((c) => c === undefined)) continue;
    const needs = n.inputs.map((x) => live.has(x) && isFloat(x.dtype));
    if (!needs.some(Boolean)) continue;
    const rule = vjpRules[n.op] as (node: Node<Op>, cts: (Value | undefined)[], needs: boolean[]) => (Value | undefined)[];
    const inCts = rule(n, outCts, needs);
    n.inputs.forEach((x, k) => {
      const c = inCts[k];
      if (needs[k] && c !== undefined) accumulate(x, c);
    });
  }
  const out = wrt.map((w) => cts.get(w) ?? constant(g, 0, [...w.shape] as number[], w.dtype));
  typecheck(g);
  return out;
}
