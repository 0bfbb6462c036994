/**
 * Reverse-mode differentiation over the IR. The engine does the cross-cutting work so each rule
 * states only a local derivative: it walks only nodes on a path from the targets to the loss,
 * sums broadcast cotangents back to input shapes, and accumulates fan-out.
 */
import { ShapeError, internal } from "../errors.ts";
import { add, concat, constant, pad, reduceSum, reshape } from "../ir/builder.ts";
import { broadcastAxes, checkAxis, isFloat, shapeToString, shapesEqual } from "../ir/dtype-shape.ts";
import { type Node, type Value, typecheck } from "../ir/graph.ts";
import { Op } from "../ir/ops.ts";
import { planCheckpoints, recompute } from "./checkpoint.ts";
import { planRegions } from "./regions.ts";
import { vjpRules } from "./rules.ts";

/** Sum a cotangent over the axes that broadcasting added, back to `like`'s shape. */
export function sumToShape(ct: Value, like: Value): Value {
  if (shapesEqual(ct.shape, like.shape)) return ct;
  const axes = broadcastAxes(like.shape, ct.shape);
  const summed = axes.length ? reduceSum(ct, axes, true) : ct;
  return shapesEqual(summed.shape, like.shape) ? summed : reshape(summed, [...like.shape]);
}

/**
 * The sum of a value's fan-out cotangents. Cotangents of disjoint slices (Pad nodes along one axis,
 * as the Slice rule makes them) are concatenated rather than added: n slices of a stacked tensor
 * then cost one pass over it instead of n zero-padded copies and n − 1 full-size additions.
 */
function sumCotangents(list: Value[]): Value {
  const byAxis = new Map<number, Node<Op.Pad>[]>();
  const rest: Value[] = [];
  for (const c of list) {
    const p = c.producer?.op === Op.Pad ? (c.producer as Node<Op.Pad>) : undefined;
    const axis = p ? checkAxis(p.params.axis, c.rank, "Pad") : -1;
    if (!p || typeof p.inputs[0].shape[axis] !== "number" || typeof c.shape[axis] !== "number") {
      rest.push(c);
      continue;
    }
    byAxis.set(axis, [...(byAxis.get(axis) ?? []), p]);
  }
  for (const [axis, pads] of byAxis) {
    const size = pads[0].outputs[0].shape[axis] as number;
    pads.sort((a, b2) => a.params.before - b2.params.before);
    const end = (p: Node<Op.Pad>) => p.params.before + (p.inputs[0].shape[axis] as number);
    const disjoint = pads.every((p, i) => i === 0 || p.params.before >= end(pads[i - 1]));
    if (pads.length < 2 || !disjoint) {
      rest.push(...pads.map((p) => p.outputs[0]));
      continue;
    }
    const pieces = pads.map((p, i) => {
      const before = i === 0 ? p.params.before : 0;
      const after = (i + 1 < pads.length ? pads[i + 1].params.before : size) - end(p);
      return before || after ? pad(p.inputs[0], axis, before, after) : p.inputs[0];
    });
    rest.push(concat(pieces, axis));
  }
  return rest.reduce((acc, c) => add(acc, c));
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

  // Fan-out contributions are collected and summed when the value's cotangent is first read.
  const seed = constant(g, 1, [...loss.shape] as number[], loss.dtype);
  const parts = new Map<Value, Value[]>([[loss, [seed]]]);
  // the cotangent emitted last: a recomputed region reads it so that it runs only from there on
  let latest = seed;
  const accumulate = (x: Value, ct: Value) => {
    const c = sumToShape(ct, x);
    if (!shapesEqual(c.shape, x.shape)) internal(`cotangent ${shapeToString(c.shape)} for ${x}`);
    latest = c;
    const list = parts.get(x);
    if (list) list.push(c);
    else parts.set(x, [c]);
  };
  const cotangent = (x: Value): Value | undefined => {
    const list = parts.get(x);
    if (!list) return undefined;
    if (list.length > 1) parts.set(x, [sumCotangents(list)]);
    return parts.get(x)![0];
  };

  const regions = planRegions(g, loss, live);
  const checkpoints = planCheckpoints(g);
  const propagate = (inputs: readonly Value[], inCts: (Value | undefined)[], needs: boolean[]) =>
    inputs.forEach((x, k) => {
      const c = inCts[k];
      if (needs[k] && c !== undefined) accumulate(x, c);
    });

  const visit = (n: Node) => {
    const active = regions.get(n);
    if (active) {
      // a region's interior is skipped; its rule runs once, at its earliest node
      if (n !== active.first) return;
      const { inputs, outputs, rule } = active.region;
      const outCts = outputs.map((o) => cotangent(o));
      if (outCts.every((c) => c === undefined)) return;
      const needs = inputs.map((x) => live.has(x) && isFloat(x.dtype));
      if (needs.some(Boolean)) propagate(inputs, rule(outCts, needs), needs);
      return;
    }
    const outCts = n.outputs.map((o) => cotangent(o));
    if (outCts.every((c) => c === undefined)) return;
    const needs = n.inputs.map((x) => live.has(x) && isFloat(x.dtype));
    if (!needs.some(Boolean)) return;
    const rule = vjpRules[n.op] as (node: Node<Op>, cts: (Value | undefined)[], needs: boolean[]) => (Value | undefined)[];
    propagate(n.inputs, rule(n, outCts, needs), needs);
  };

  // inside a checkpoint region the rules read the region's recomputed values
  let copy: Map<Value, Value> | undefined;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const ck = checkpoints.get(n);
    if (ck && n === ck.interior.at(-1) && ck.region.outputs.some((o) => parts.has(o))) copy = recompute(g, ck, latest);
    if (ck && copy) g.withSubstitution(copy, () => visit(n));
    else visit(n);
    if (ck && n === ck.interior[0]) copy = undefined;
  }
  const out = wrt.map((w) => cotangent(w) ?? constant(g, 0, [...w.shape] as number[], w.dtype));
  typecheck(g);
  return out;
}
