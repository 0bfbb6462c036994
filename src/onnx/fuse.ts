/**
 * Peephole fusion applied while lowering: `Add(MatMul(A, W), C)` with a rank-2 W becomes one ONNX
 * Gemm whose C input carries the addend (a bias [N] or a full [.., N] tensor), with batched A
 * flattened to [M, K] by a free Reshape. This removes one full elementwise pass per fused Add:
 * every linear layer's bias, every LoRA update added to its layer's output, and every fan-out
 * accumulation `dX = dY·W + …` in the backward. ONNX Runtime only fuses plain 2-D MatMul + Add
 * itself (not FusedMatMul, which every `x·Wᵀ` with batched x lowers to), so the generator does it.
 *
 * Opt-in (`fuse: true`), because it pays only on one thread: ORT's Gemm first copies C (or
 * broadcasts the bias) into the output on the calling thread, then runs the GEMM with beta = 1,
 * while a separate Add runs on every intra-op thread. Measured on a ViT-B block step (2-core dev
 * box): 1 thread −2.7 % time; 2 threads ±2 % (the fc1 GEMM with its [1576, 3072] bias fill took
 * 27.5 ms against 23 ms for the same GEMM without C); more cores make the serial fill worse.
 */
import { type Shape, shapesEqual } from "../ir/dtype-shape.ts";
import type { Node, Value } from "../ir/graph.ts";
import { Op } from "../ir/ops.ts";
import type { LowerCtx } from "./lower.ts";
import { int64Tensor, node } from "./proto.ts";

export interface GemmFusion {
  mm: Node<Op.MatMul>;
  add: Node<Op.Add>;
  /** The Add's other operand, fed to Gemm as C. */
  other: Value;
}

export interface FusionPlan {
  /** Add node → the fusion lowered in its place. */
  fused: Map<Node, GemmFusion>;
  /** MatMul nodes absorbed into a fused Add (not lowered on their own). */
  skip: Set<Node>;
}

const concreteShape = (s: Shape): s is number[] => s.every((d) => typeof d === "number");

/** C as Gemm takes it: the full output shape, or a bias broadcast along every axis but the last. */
function cKind(other: Value, out: Value): "full" | "bias" | undefined {
  if (other.dtype !== out.dtype) return undefined;
  if (shapesEqual(other.shape, out.shape)) return "full";
  const n = out.shape.at(-1);
  if (other.rank >= 1 && other.shape.at(-1) === n && other.shape.slice(0, -1).every((d) => d === 1)) return "bias";
  return undefined;
}

function fusable(mm: Node, add: Node<Op.Add>, other: Value, uses: Map<Value, number>): mm is Node<Op.MatMul> {
  if (mm.op !== Op.MatMul) return false;
  const [A, B] = mm.inputs;
  const y = mm.outputs[0];
  const { transA } = (mm as Node<Op.MatMul>).params;
  if (uses.get(y) !== 1) return false;
  if (y.dtype !== "float32" && y.dtype !== "float64") return false;
  if (B.rank !== 2 || A.rank < 2) return false;
  if (A.rank > 2 && (transA || !concreteShape(y.shape) || typeof A.shape.at(-1) !== "number")) return false;
  if (!shapesEqual(add.outputs[0].shape, y.shape)) return false;
  return cKind(other, y) !== undefined;
}

/** Which Adds to lower as Gemm, given the nodes to emit and the graph outputs. */
export function planGemmFusions(live: Node[], outputs: Value[]): FusionPlan {
  const uses = new Map<Value, number>();
  const use = (v: Value) => uses.set(v, (uses.get(v) ?? 0) + 1);
  for (const n of live) for (const x of n.inputs) use(x);
  for (const o of outputs) use(o);
  const liveSet = new Set(live);
  const plan: FusionPlan = { fused: new Map(), skip: new Set() };
  for (const n of live) {
    if (n.op !== Op.Add) continue;
    const add = n as Node<Op.Add>;
    for (const side of [1, 0]) {
      const mm = add.inputs[side].producer;
      const other = add.inputs[1 - side];
      if (!mm || !liveSet.has(mm) || plan.skip.has(mm) || !fusable(mm, add, other, uses)) continue;
      plan.fused.set(add, { mm, add, other });
      plan.skip.add(mm);
      break;
    }
  }
  return plan;
}

/** Emit Reshape? → Gemm(A, B, C) → Reshape? in place of the fused Add. */
export function lowerGemmAdd(ctx: LowerCtx, { mm, add, other }: GemmFusion): void {
  const [A, B] = mm.inputs;
  const y = mm.outputs[0];
  const { transA, transB, alpha } = mm.params;
  const shape = (dims: number[]) => ctx.constant((nm) => int64Tensor(nm, dims));
  const reshaped = (v: Value, dims: number[]) => {
    const t = ctx.fresh("r");
    ctx.emit(node("Reshape", [ctx.name(v), shape(dims)], [t]));
    return t;
  };
  const N = y.shape.at(-1) as number;
  const a = A.rank > 2 ? reshaped(A, [-1, A.shape.at(-1) as number]) : ctx.name(A);
  const kind = cKind(other, y);
  const c = kind === "full" ? (other.rank > 2 ? reshaped(other, [-1, N]) : ctx.name(other)) : other.rank > 1 ? reshaped(other, [N]) : ctx.name(other);
  const out = ctx.name(add.outputs[0]);
  const g = y.rank > 2 ? ctx.fresh("gemm") : out;
  ctx.emit(node("Gemm", [a, ctx.name(B), c], [g], { transA: +transA, transB: +transB, alpha: { float: alpha }, beta: { float: 1 } }));
  if (g !== out) ctx.emit(node("Reshape", [g, shape(y.shape as number[])], [out]));
}
