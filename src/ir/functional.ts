/**
 * Composites over the primitives: what models are written in. None of these is a new op, so
 * inference and lowering come for free, and so does differentiation, except where a composite
 * states a cheaper derivative for a region of its own (custom-vjp.ts).
 */
import * as b from "./builder.ts";
import { checkpoint } from "./checkpoint.ts";
import { customVjp } from "./custom-vjp.ts";
import { ShapeError } from "../errors.ts";
import type { Value } from "./graph.ts";

/** y = x Wᵀ + b with W stored as HuggingFace does ([out, in]); no transposed copy is made. */
export function linear(x: Value, weight: Value, bias?: Value): Value {
  const y = b.matmul(x, weight, { transB: true }); // [..., out]
  return bias ? b.add(y, bias) : y;
}

/** GELU with the exact erf, as HuggingFace's "gelu": x · Φ(x) = ½x(1 + erf(x/√2)). */
export function gelu(x: Value): Value {
  return b.mul(b.mul(x, 0.5), b.add(b.erf(b.mul(x, Math.SQRT1_2)), 1));
}

/**
 * The transformer MLP `linear(gelu(linear(x, W1, b1)), W2, b2)` (exact-erf GELU), arranged for the
 * fewest full-width elementwise passes, which are most of a training step's non-GEMM time: the
 * first GEMM emits s = (x W1ᵀ + b1)/√2 directly (alpha and a pre-scaled bias), the GELU becomes
 * t = s·(1 + erf s) = √2·gelu, and the second GEMM takes the remaining 1/√2 in its alpha. That
 * is 3 passes forward and, with the factored derivative dt ⊙ (u + s·e^(c−s²)) as the region's
 * rule, 6 backward (the primitives' rules would give 7; the textbook composition 5 and 9).
 * `hook(v, k)` returns the adapter update of projection k (1 or 2) for input v, or nothing;
 * projection 2 is handed t, and since adapter updates are linear in their input, its update is
 * scaled by 1/√2.
 */
export function geluMlp(x: Value, w1: Value, b1: Value | undefined, w2: Value, b2: Value | undefined, hook?: (v: Value, k: 1 | 2) => Value | undefined): Value {
  const c = Math.SQRT1_2;
  let s = b.matmul(x, w1, { transB: true, alpha: c });
  if (b1) s = b.add(s, b.mul(b1, c));
  const d1 = hook?.(x, 1);
  if (d1) s = b.add(s, b.mul(d1, c));
  const u = b.add(b.erf(s), 1);
  const t = b.mul(s, u);
  // d/ds s(1 + erf s) = (1 + erf s) + s · 2/√π · e^(−s²), the constant folded into the exponent
  customVjp([s], [t], ([dt]) => [b.mul(dt!, b.add(u, b.mul(s, b.exp(b.sub(Math.log(2 / Math.sqrt(Math.PI)), b.mul(s, s))))))]);
  let y = b.matmul(t, w2, { transB: true, alpha: c });
  if (b2) y = b.add(y, b2);
  const d2 = hook?.(t, 2);
  return d2 ? b.add(y, b.mul(d2, c)) : y;
}

/** Layer normalisation over the last axis. */
export function layerNorm(x: Value, scale: Value, bias: Value, eps: number): Value {
  return b.layerNormParts(x, scale, bias, eps).y;
}

/**
 * Where dropout masks come from when not drawn in-graph: e.g. graph inputs the trainer fills from
 * a seeded stream per step, so a resumed run replays the same masks.
 */
export type MaskSource = (like: Value, p: number, key: number) => Value;

/** Inverted dropout; the identity when p = 0 (evaluation). `seed` also keys a MaskSource. */
export function dropout(x: Value, p: number, seed: number, source?: MaskSource): Value {
  if (p === 0) return x;
  return b.mul(x, keepMask(x, p, seed, source));
}

/** The scaled keep-mask (0 or 1/(1−p)) dropout multiplies by. */
function keepMask(x: Value, p: number, seed: number, source?: MaskSource): Value {
  return source ? source(x, p, seed) : b.dropoutMask(x, p, seed);
}

/** [B, T, H·dh] → [B, H, T, dh] */
export function splitHeads(x: Value, heads: number): Value {
  const [B, T, d] = x.shape;
  if (typeof d !== "number" || d % heads !== 0) throw new ShapeError(`splitHeads: width ${d} is not divisible by ${heads} heads`);
  return b.transpose(b.reshape(x, [B, T, heads, d / heads]), [0, 2, 1, 3]);
}

/** [B, H, T, dh] → [B, T, H·dh] */
export function mergeHeads(x: Value): Value {
  const [B, H, T, dh] = x.shape;
  return b.reshape(b.transpose(x, [0, 2, 1, 3]), [B, T, (H as number) * (dh as number)]);
}

/** Options of multi-head attention: causal masking, a padding mask, a KV cache, dropout. */
export interface AttentionOptions {
  heads: number;
  /** Additive mask broadcastable to [B, H, T, T] (0 keeps, a large negative drops). */
  mask?: Value;
  dropout?: { p: number; seed: number; source?: MaskSource };
}

/** Scaled dot-product multi-head attention on projected q, k, v of shape [B, T, d]. */
export function attention(q: Value, k: Value, v: Value, opts: AttentionOptions): Value {
  const [qh, kh, vh] = [q, k, v].map((t) => splitHeads(t, opts.heads)); // [B, H, T, dh]
  return mergeHeads(scaledDotProduct(qh, kh, vh, opts)); // [B, T, d]
}

/**
 * softmax(q kᵀ / √dh + mask) v on heads already split: q [..., Tq, dh], k and v [..., Tk, dh]
 * with the same leading axes (grouped-query attention folds a K/V head's query heads into Tq).
 */
export function scaledDotProduct(qh: Value, kh: Value, vh: Value, opts: Omit<AttentionOptions, "heads">): Value {
  const dh = qh.shape[qh.rank - 1] as number;
  let scores = b.matmul(qh, kh, { transB: true, alpha: 1 / Math.sqrt(dh) }); // [..., Tq, Tk]
  if (opts.mask) scores = b.add(scores, opts.mask);
  return weightedValues(scores, vh, opts.dropout);
}

/**
 * softmax(scores) (dropped out) · v, with the softmax backward's row sums Σⱼ dPᵢⱼPᵢⱼ taken as
 * Σₖ dOᵢₖOᵢₖ over the [T, dh] output instead of the [T, T] probabilities (the two are equal since
 * dP = dO·vᵀ and O = P·v; FlashAttention's trick): one [B, H, T, T] pass fewer in every layer.
 */
function weightedValues(scores: Value, vh: Value, drop: AttentionOptions["dropout"]): Value {
  const probs = b.softmax(scores, -1);
  const mask = drop && drop.p > 0 ? keepMask(probs, drop.p, drop.seed, drop.source) : undefined;
  const kept = mask ? b.mul(probs, mask) : probs;
  const out = b.matmul(kept, vh); // [B, H, T, dh]
  customVjp([scores, vh], [out], ([dOut], [needScores, needV]) => {
    const dO = dOut!;
    let dScores: Value | undefined;
    if (needScores) {
      const dKept = b.matmul(dO, vh, { transB: true });
      const rowDot = b.reduceSum(b.mul(dO, out), [-1], true); // [B, H, T, 1]
      dScores = b.mul(probs, b.sub(mask ? b.mul(dKept, mask) : dKept, rowDot));
    }
    return [dScores, needV ? b.matmul(kept, dO, { transA: true }) : undefined];
  });
  return out;
}

/** An additive attention mask [B, 1, 1, T] from a 0/1 float mask [B, T], as HuggingFace builds it. */
export function additiveMask(mask01: Value): Value {
  const [B, T] = mask01.shape;
  const neg = mask01.dtype === "float64" ? -Number.MAX_VALUE : -3.4028234663852886e38;
  return b.reshape(b.mul(b.sub(1, mask01), neg), [B, 1, 1, T]);
}

/** Mean cross-entropy of logits [N, C] against int64 labels [N]. */
export function crossEntropy(logits: Value, labels: Value): Value {
  return b.softmaxCrossEntropy(logits, labels).loss;
}

/**
 * RMSNorm over the last axis, as Llama's: w · x / √(mean(x²) + eps). x / √(…) is computed again
 * from x in the backward pass rather than kept (three passes over x against one more [T, d] value
 * alive per norm).
 */
export function rmsNorm(x: Value, weight: Value, eps: number): Value {
  const ms = b.reduceMean(b.mul(x, x), [-1], true);
  const y = b.mul(b.div(x, b.sqrt(b.add(ms, eps))), weight);
  checkpoint([x], [y]);
  return y;
}

/**
 * SwiGLU's gated product silu(g) · u with σ(g) = 1 / (1 + e^(−g)). Its rule differentiates
 * through σ directly: the primitives' chain would meet ∞ · 0 where e^(−g) overflows (g < −88).
 * σ(g) and silu(g) are recomputed from g in the backward pass rather than kept: four elementwise
 * passes over [T, intermediate] instead of two such tensors alive per layer until then.
 */
export function swiglu(gate: Value, up: Value): Value {
  const sig = b.div(1, b.add(b.exp(b.neg(gate)), 1));
  const act = b.mul(gate, sig);
  const y = b.mul(act, up);
  customVjp([gate, up], [y], ([dy], [needG, needU]) => {
    const d = dy!;
    // d silu / dg = σ(g) · (1 + g · (1 − σ(g)))
    const dAct = needG ? b.mul(sig, b.add(b.mul(gate, b.sub(1, sig)), 1)) : undefined;
    return [dAct && b.mul(b.mul(d, up), dAct), needU ? b.mul(d, act) : undefined];
  });
  checkpoint([gate, up], [y]);
  return y;
}

/**
 * Rotary position embedding on x [..., T, dh]: x · cos + rotate_half(x) · sin with
 * rotate_half(x) = cat(−x₂, x₁), `cos` and `sin` [T, dh] (their halves repeated, as HF builds them).
 */
export function rotary(x: Value, cos: Value, sin: Value): Value {
  const ax = x.rank - 1;
  const dh = x.shape[ax] as number;
  const half = dh / 2;
  const rotated = b.concat([b.neg(b.slice(x, ax, half, dh)), b.slice(x, ax, 0, half)], ax);
  return b.add(b.mul(x, cos), b.mul(rotated, sin));
}
