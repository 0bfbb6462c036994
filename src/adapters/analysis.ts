/**
 * Analysis of trained adapters: the multilinear spectrum of a tensor (singular values of every
 * mode-n unfolding, the quantity that tells which modes are redundant — the TensLoRA+ report's
 * per-mode "SVD entropy" and "top-1 energy") and a helper that stacks an adapter set's updates
 * ΔW[p,l] into one (in, dh, heads, qkv, depth) tensor, whatever construction produced them, so
 * LoRA and every TensLoRA construction are analysed on the same footing.
 */
import { ShapeError } from "../errors.ts";
import { type Dense, modeGram } from "../tensor/dense.ts";
import { symmetricEigen } from "../tensor/linalg.ts";
import { type ModelShape, validateModelShape } from "./constructions.ts";
import { type AdapterState, type HeadLayout, deltaWeightSliced } from "./reference.ts";

/** Spectrum of one mode-n unfolding. */
export interface ModeSpectrum {
  mode: number;
  /** Mode name when the caller supplied names. */
  name?: string;
  /** I_n. */
  size: number;
  /** σ_1 ≥ σ_2 ≥ … (min(I_n, Π others) values). */
  singularValues: Float64Array;
  /** σ_k / σ_1 (all zero for a zero tensor). */
  normalized: Float64Array;
  /** σ_k² / Σ σ² (all zero for a zero tensor). */
  energy: Float64Array;
  /** Shannon entropy −Σ e_k ln e_k of the energy fractions (nats; 0 for rank one). */
  entropy: number;
  /** energy[0]. */
  top1Energy: number;
}

/**
 * The singular values of every mode-n unfolding of `t`, normalised. Computed from the Gram
 * matrix of each unfolding (I_n × I_n), so the cost is Π(shape) · I_n per mode and values below
 * about 1e-8·σ_1 are rounding noise (see linalg.ts).
 */
export function multilinearSpectrum(t: Dense, names?: readonly string[]): ModeSpectrum[] {
  if (names && names.length !== t.shape.length) {
    throw new ShapeError(`multilinearSpectrum: ${names.length} mode names for a tensor with ${t.shape.length} modes [${t.shape.join(", ")}]`);
  }
  return t.shape.map((size, mode) => {
    const others = t.data.length / Math.max(size, 1);
    const k = Math.min(size, others);
    const { values } = symmetricEigen(modeGram(t, mode), { vectors: false });
    const sv = Float64Array.from(values.subarray(0, k), (v) => Math.sqrt(Math.max(v, 0)));
    const top = sv.length > 0 ? sv[0] : 0;
    let total = 0;
    for (const s of sv) total += s * s;
    const normalized = Float64Array.from(sv, (s) => (top > 0 ? s / top : 0));
    const energy = Float64Array.from(sv, (s) => (total > 0 ? (s * s) / total : 0));
    let entropy = 0;
    for (const e of energy) if (e > 0) entropy -= e * Math.log(e);
    return {
      mode,
      ...(names ? { name: names[mode] } : {}),
      size,
      singularValues: sv,
      normalized,
      energy,
      entropy,
      top1Energy: energy.length > 0 ? energy[0] : 0,
    };
  });
}

/** Number of singular values above `tol` · σ_1 (default 1e-6, above the Gram route's noise). */
export function numericalRank(spectrum: ModeSpectrum, tol = 1e-6): number {
  let n = 0;
  for (const v of spectrum.normalized) if (v > tol) n++;
  return n;
}

/**
 * Stack ΔW[p,l] ([dOut, dIn] each) into T [dIn, dh, heads, P, L] with
 * T[i, j, h, p, l] = ΔW[p,l][col(j, h), i], col = h·dh + j (head_major, the model's heads) or
 * j·H + h (interleaved). Stored as float32: a ViT-B stack has 21 M entries.
 */
export function stackUpdateTensor(shape: ModelShape, deltaWeight: (p: number, l: number) => Dense, headLayout: HeadLayout = "head_major"): Dense {
  validateModelShape(shape);
  const { dIn, dOut, heads: H, layers: L } = shape;
  if (dOut % H !== 0) {
    throw new ShapeError(`stackUpdateTensor: heads must divide dOut to split it into (dh, heads), got dOut = ${dOut}, heads = ${H}`);
  }
  const dh = dOut / H;
  const P = shape.projections.length;
  const out = new Float32Array(dIn * dOut * P * L);
  for (let p = 0; p < P; p++) {
    for (let l = 0; l < L; l++) {
      const dw = deltaWeight(p, l);
      if (dw.shape.length !== 2 || dw.shape[0] !== dOut || dw.shape[1] !== dIn) {
        throw new ShapeError(`stackUpdateTensor: ΔW[${p},${l}] must be [${dOut}, ${dIn}], got [${dw.shape.join(", ")}]`);
      }
      for (let j = 0; j < dh; j++) {
        for (let h = 0; h < H; h++) {
          const col = headLayout === "head_major" ? h * dh + j : j * H + h;
          for (let i = 0; i < dIn; i++) {
            // flat index of [i, j, h, p, l] in row-major [dIn, dh, H, P, L]
            out[(((i * dh + j) * H + h) * P + p) * L + l] = dw.data[col * dIn + i];
          }
        }
      }
    }
  }
  return { shape: [dIn, dh, H, P, L], data: out };
}

/** Mode names of `stackUpdateTensor`'s result. */
export const STACK_MODE_NAMES: readonly string[] = ["in", "dh", "heads", "qkv", "depth"];

/** `stackUpdateTensor` over an adapter family's own updates (sliced path, scaling included). */
export function stackAdapterUpdates(state: AdapterState, headLayout: HeadLayout = "head_major"): Dense {
  return stackUpdateTensor(state.shape, (p, l) => deltaWeightSliced(state, p, l), headLayout);
}
