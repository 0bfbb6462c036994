/**
 * Shared test helpers: golden files as HuggingFace feeds, one call to build + compile + run a
 * model graph, error measures, temporary folders, random adapter parameters, and independent
 * plain-TypeScript references (float64 loops, nothing from src/) for the adapter update matrices
 * and the ViT / RoBERTa forward passes.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AdapterSet, createAdapterSet } from "../src/adapters/adapter-set.ts";
import { type AdapterGroup, type AdapterOptions, planAdapter } from "../src/adapters/config.ts";
import type { LinearSite } from "../src/nn/sites.ts";
import type { GroupMember } from "../src/adapters/groups.ts";
import { CONSTRUCTION_SPECS, type Construction, modeNames } from "../src/adapters/constructions.ts";
import type { Factorization } from "../src/adapters/factorizations/index.ts";
import { toBigInt64, toFloat32 } from "../src/io/dtype-convert.ts";
import { readSafetensors, type TensorEntry } from "../src/io/safetensors.ts";
import { type BuiltGraph, type GraphSpec, buildModelGraph } from "../src/pipeline/build.ts";
import type { WeightMap } from "../src/nn/params.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import type { CompiledGraph } from "../src/runtime/types.ts";
import { Rng } from "../src/tensor/random.ts";
import { erf } from "./reference.ts";

export const FIXTURES = "test/fixtures/hf-tiny";

// ---------------------------------------------------------------------------------------------
// golden files and feeds

export type Golden = Map<string, TensorEntry>;

export function readGolden(name: string): Golden {
  return readSafetensors(join(FIXTURES, `${name}.safetensors`)).tensors;
}

export function goldenF32(gold: Golden, key: string): Float32Array {
  const e = gold.get(key);
  if (!e) throw new Error(`golden has no "${key}"; it has ${[...gold.keys()].slice(0, 12).join(", ")}…`);
  return toFloat32(e, key);
}

/** The model inputs by HF name (pixel_values or input_ids + attention_mask), from the first golden that has them. */
export function hfInputs(...golds: Golden[]): Record<string, HostTensor> {
  const src = golds.find((g) => g.has("pixel_values") || g.has("input_ids"));
  if (!src) throw new Error("no golden holds model inputs");
  const out: Record<string, HostTensor> = {};
  for (const k of ["pixel_values", "input_ids", "attention_mask", "token_type_ids"]) {
    const e = src.get(k);
    if (!e) continue;
    out[k] = k === "pixel_values" ? { dtype: "float32", shape: e.shape, data: toFloat32(e) } : { dtype: "int64", shape: e.shape, data: toBigInt64(e) };
  }
  return out;
}

export function labelsOf(gold: Golden): HostTensor {
  const e = gold.get("labels")!;
  return { dtype: "int64", shape: e.shape, data: toBigInt64(e) };
}

export const f32Tensor = (shape: number[], data: Float32Array): HostTensor => ({ dtype: "float32", shape, data });

/** Batch and sequence length of HF inputs. */
export function batchOf(hf: Record<string, HostTensor>): { batch: number; seqLen?: number } {
  const x = hf.pixel_values ?? hf.input_ids;
  return { batch: x.shape[0], seqLen: hf.input_ids?.shape[1] };
}

/** A compiled model graph and how to feed it. */
export interface ModelRunner {
  built: BuiltGraph;
  compiled: CompiledGraph;
  /** Run with HF inputs; trainable parameters come from `params`, else from the built weights. */
  run(hf: Record<string, HostTensor>, opts?: { labels?: HostTensor; target?: HostTensor; params?: WeightMap }): Promise<Record<string, HostTensor>>;
  dispose(): void;
}

export async function modelRunner(spec: Omit<GraphSpec, "batch" | "seqLen"> & { hf: Record<string, HostTensor> }): Promise<ModelRunner> {
  const { hf, ...rest } = spec;
  const built = buildModelGraph({ ...rest, ...batchOf(hf) });
  const compiled = await compile(built.graph);
  const model = spec.model;
  return {
    built,
    compiled,
    async run(hfIn, opts = {}) {
      const feeds: Record<string, HostTensor> = model.family.feeds(model.config, hfIn);
      for (const n of built.trainable) {
        const t = opts.params?.get(n) ?? built.weights.get(n)!;
        feeds[n] = f32Tensor(t.shape, t.data);
      }
      if (spec.loss) feeds.labels = opts.labels!;
      if (spec.targetSize !== undefined) feeds.target = opts.target!;
      return compiled.run(feeds);
    },
    dispose: () => compiled.dispose(),
  };
}

export const outF32 = (r: Record<string, HostTensor>, k: string): Float32Array => {
  if (!r[k]) throw new Error(`graph has no output "${k}"; it has ${Object.keys(r).join(", ")}`);
  return r[k].data as Float32Array;
};

// ---------------------------------------------------------------------------------------------
// error measures

type Num = ArrayLike<number>;

export function maxAbsDiff(a: Num, b: Num): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

export function maxAbs(a: Num): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max |a − b| / max |b| (b the reference). */
export function maxRelDiff(a: Num, b: Num): number {
  const scale = maxAbs(b);
  return maxAbsDiff(a, b) / (scale > 0 ? scale : 1);
}

/**
 * The graph's gradients against a golden's: a "grad.<name>" reference for exactly the parameters
 * `trained`, each within `rel` of its largest value. Returns the worst relative difference.
 */
export function assertGradients(out: Record<string, HostTensor>, gold: Golden, trained: Iterable<string>, rel: number): { worst: number; count: number } {
  const keys = [...gold.keys()].filter((k) => k.startsWith("grad."));
  assert.deepEqual(keys.map((k) => k.slice(5)).sort(), [...trained].sort(), "a golden gradient for every trained tensor");
  let worst = 0;
  for (const k of keys) {
    const d = maxRelDiff(outF32(out, k), goldenF32(gold, k));
    assert.ok(d <= rel, `${k}: relative difference ${d}`);
    worst = Math.max(worst, d);
  }
  return { worst, count: keys.length };
}

/** Same length and the same float32 bits everywhere. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function dot(a: Num, b: Num): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------------------------------------
// temporary folders, random values

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tenslora-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function randn(rng: Rng, n: number, std = 1): Float32Array {
  return rng.normalArray(n, std);
}

/** A square d → d projection `enc.<layer>.<name>` whose outputs are `heads` attention heads. */
export function headSite(name: string, layer: number, d: number, heads: number): LinearSite {
  return { path: `enc.${layer}.${name}`, name, layer, inFeatures: d, outFeatures: d, heads: { side: "out", count: heads, dim: d / heads } };
}

/** A fresh adapter for options on a list of linear sites. */
export function planSet(sites: LinearSite[], opts: AdapterOptions, seed = 1): AdapterSet {
  const { config, groups } = planAdapter(opts, sites);
  return createAdapterSet(config, groups, seed);
}

/** Every adapter tensor replaced by N(0, std²) draws (a non-zero update). */
export function randomizeAdapter(set: AdapterSet, seed: number, std = 0.5): AdapterSet {
  const rng = new Rng(seed);
  const tensors: WeightMap = new Map();
  for (const [k, t] of set.tensors) tensors.set(k, { shape: [...t.shape], data: randn(rng, t.data.length, std) });
  return { ...set, tensors };
}

/** The modes partial Tucker factorises: all but qkv and depth, which stay whole in its core. */
export const matrixModeNames = (c: Construction): string[] => modeNames(c).filter((m) => m !== "qkv" && m !== "depth");

/**
 * The counts of docs/adapters.md §5, written out for one shape group ([dIn, dOut], dh = dOut/H,
 * P projections, L layers): Tucker Σ I_n r_n + Π r_n, CP R·Σ I_n, tensor-train Σ r_{k−1} I_k r_k (r₀ = r_N = 1),
 * partial Tucker Σ_m I_m r_m + Π_m r_m · Π_idx I over the factorised modes m (the index modes whole).
 */
export function designCount(c: Construction, r: number[], dIn: number, dOut: number, H: number, L: number, P: number, f: Factorization): number {
  if (c === "lora") return P * L * r[0] * (dIn + dOut);
  const att = CONSTRUCTION_SPECS[c].hasAtt;
  const sizes = [dIn, ...(att ? [dOut / H, H] : [dOut]), ...(c.includes("qkv") ? [P] : []), ...(c.includes("depth") ? [L] : [])];
  const tensors = (c.includes("qkv") ? 1 : P) * (c.includes("depth") ? 1 : L);
  if (f === "cp") return tensors * r[0] * sizes.reduce((a, b) => a + b, 0);
  if (f === "tt") {
    const b = [1, ...r, 1];
    return tensors * sizes.reduce((a, n, k) => a + b[k] * n * b[k + 1], 0);
  }
  const core = r.reduce((a, b) => a * b, 1) * sizes.slice(r.length).reduce((a, b) => a * b, 1);
  if (f === "partial_tucker") return tensors * (r.reduce((a, rn, i) => a + sizes[i] * rn, 0) + core);
  return tensors * (sizes.reduce((a, n, i) => a + n * r[i], 0) + r.reduce((a, b) => a * b, 1));
}

// ---------------------------------------------------------------------------------------------
// independent reference for the update matrices (docs/adapters.md §2)

const at = (w: WeightMap, k: string): Float32Array => {
  const t = w.get(k);
  if (!t) throw new Error(`reference: no tensor "${k}"`);
  return t.data;
};

/**
 * ΔW[p][l] ([dOut, dIn], row-major, float64) of every adapted projection, by folding the whole
 * tensor entry by entry: T[i, o…, q, e] = Σ_r G[r] Π_n U_n[i_n, r_n] (CP: the superdiagonal
 * core), sliced at q = p, e = l, output column o = h·dh + j (head_major) or j·H + h
 * (interleaved), then ΔW = s · Mᵀ. LoRA: ΔW = s · B A. Tensor t: att/lora p·L + l, qkv and
 * att_qkv l, depth and att_depth p, qkv_depth and att_qkv_depth 0.
 */
export function naiveDeltaWeights(set: AdapterSet, group: AdapterGroup = set.groups[0]): Float64Array[][] {
  const { config } = set;
  const { shape } = group;
  const { dIn, dOut, heads: H, layers: L } = shape;
  const P = shape.projections.length;
  const c = group.construction;
  const parts = c.split("_");
  const att = parts.includes("att");
  const stQ = parts.includes("qkv");
  const stD = parts.includes("depth");
  const s = config.scaling;
  const dh = dOut / H;
  const out: Float64Array[][] = [];
  for (let p = 0; p < P; p++) {
    out.push([]);
    for (let l = 0; l < L; l++) {
      const dw = new Float64Array(dOut * dIn);
      if (c === "lora") {
        const path = group.grid[p][l].path;
        const A = at(set.tensors, `base_model.model.${path}.lora_A.weight`);
        const B = at(set.tensors, `base_model.model.${path}.lora_B.weight`);
        const r = group.ranks[0];
        for (let o = 0; o < dOut; o++)
          for (let i = 0; i < dIn; i++) {
            let v = 0;
            for (let k = 0; k < r; k++) v += B[o * r + k] * A[k * dIn + i];
            dw[o * dIn + i] = s * v;
          }
        out[p].push(dw);
        continue;
      }
      const t = (stQ ? 0 : p) * (stD ? 1 : L) + (stD ? 0 : l);
      const pre = `tenslora.${group.index === 0 ? "" : `g${group.index}.`}${t}`;
      const U = (n: number) => set.tensors.get(`${pre}.factors.${n}`)!;
      const nOut = att ? 2 : 1; // output-side modes after `in`
      const iQ = 1 + nOut;
      const iD = iQ + (stQ ? 1 : 0);
      const modes = 1 + nOut + (stQ ? 1 : 0) + (stD ? 1 : 0);
      const col = (j: number, h: number) => (config.headLayout === "head_major" ? h * dh + j : j * H + h);
      if (config.factorization === "tt") {
        // T[i, o…, p, l] = G₀[0, i, :] · G₁[:, o₁, :] ⋯ G_last[:, ·, 0], one matrix row at a time
        const G = Array.from({ length: modes }, (_, k) => set.tensors.get(`${pre}.cores.${k}`)!);
        const entry = (idx: number[]): number => {
          let v = [1];
          idx.forEach((x, k) => {
            const [ra, n, rb] = G[k].shape;
            const next = new Array<number>(rb).fill(0);
            for (let a = 0; a < ra; a++) for (let c = 0; c < rb; c++) next[c] += v[a] * G[k].data[(a * n + x) * rb + c];
            v = next;
          });
          return v[0];
        };
        const tail = [...(stQ ? [p] : []), ...(stD ? [l] : [])];
        for (let i = 0; i < dIn; i++) {
          if (att) for (let j = 0; j < dh; j++) for (let h = 0; h < H; h++) dw[col(j, h) * dIn + i] = s * entry([i, j, h, ...tail]);
          else for (let o = 0; o < dOut; o++) dw[o * dIn + i] = s * entry([i, o, ...tail]);
        }
        out[p].push(dw);
        continue;
      }
      const cp = config.factorization === "cp";
      // partial Tucker: the index modes have no factor, i.e. an identity one at full rank
      const partial = config.factorization === "partial_tucker";
      const factored = partial ? 1 + nOut : modes;
      const ranks = cp ? Array(modes).fill(group.ranks[0]) : partial ? [...group.ranks, ...(stQ ? [P] : []), ...(stD ? [L] : [])] : group.ranks;
      const core = cp ? undefined : at(set.tensors, `${pre}.core`);
      // enumerate rank multi-indices (CP: the diagonal only)
      const combos: number[][] = [];
      if (cp) for (let a = 0; a < ranks[0]; a++) combos.push(Array(modes).fill(a));
      else {
        const total = ranks.reduce((x: number, y: number) => x * y, 1);
        for (let f = 0; f < total; f++) {
          const idx: number[] = [];
          let rem = f;
          for (let n = modes - 1; n >= 0; n--) {
            idx[n] = rem % ranks[n];
            rem = Math.floor(rem / ranks[n]);
          }
          combos.push(idx);
        }
      }
      const F = Array.from({ length: factored }, (_, n) => U(n).data);
      const R = Array.from({ length: factored }, (_, n) => U(n).shape[1]);
      const u = (n: number, row: number, r: number) => (n < factored ? F[n][row * R[n] + r] : row === r ? 1 : 0);
      const outVec = new Float64Array(dOut); // the output-side factor part of one rank multi-index
      for (const [f, idx] of combos.entries()) {
        let g = cp ? 1 : core![f];
        if (stQ) g *= u(iQ, p, idx[iQ]);
        if (stD) g *= u(iD, l, idx[iD]);
        if (g === 0) continue;
        if (att) for (let j = 0; j < dh; j++) for (let h = 0; h < H; h++) outVec[col(j, h)] = u(1, j, idx[1]) * u(2, h, idx[2]);
        else for (let o = 0; o < dOut; o++) outVec[o] = u(1, o, idx[1]);
        for (let i = 0; i < dIn; i++) {
          const gi = s * g * u(0, i, idx[0]);
          for (let o = 0; o < dOut; o++) dw[o * dIn + i] += gi * outVec[o];
        }
      }
      out[p].push(dw);
    }
  }
  return out;
}

/**
 * ΔW of a site from its group's full-width ΔW [dOut, dIn]: K/V under GQA "mean" average the rows
 * of each query-head group (query head h reads K/V head ⌊h/g⌋); a transposed site (heads on its
 * input) takes ΔWᵀ.
 */
export function siteView(dw: Float64Array, dOut: number, dIn: number, member: GroupMember): Float64Array {
  if (member.transposed) {
    const t = new Float64Array(dw.length);
    for (let o = 0; o < dOut; o++) for (let i = 0; i < dIn; i++) t[i * dOut + o] = dw[o * dIn + i];
    return t;
  }
  if (!member.kv) return dw;
  const { heads: Hkv, dim } = member.kv;
  const g = dOut / (Hkv * dim);
  const out = new Float64Array(Hkv * dim * dIn);
  for (let j = 0; j < Hkv; j++) {
    for (let c = 0; c < dim; c++) {
      for (let q = 0; q < g; q++) {
        const row = (j * g + q) * dim + c;
        for (let i = 0; i < dIn; i++) out[(j * dim + c) * dIn + i] += dw[row * dIn + i] / g;
      }
    }
  }
  return out;
}

/** Weight key → ΔW of every adapted site (for the reference forward passes). */
export function naiveDeltaMap(set: AdapterSet): Map<string, Float64Array> {
  const m = new Map<string, Float64Array>();
  for (const group of set.groups) {
    const dws = naiveDeltaWeights(set, group);
    const { dOut, dIn } = group.shape;
    group.grid.forEach((row, p) => row.forEach((site, l) => m.set(`${site.path}.weight`, siteView(dws[p][l], dOut, dIn, group.members[p]))));
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// independent reference forward passes (HF's modeling_vit / modeling_roberta, written as loops)

export type RawConfig = Record<string, unknown>;

/** Weights of the reference: key → values (any float array). */
export type RefWeights = Map<string, ArrayLike<number>>;

export interface RefOutputs {
  logits: Float64Array; // [B, numLabels]
  lastHiddenState: Float64Array; // [B, T, d]
  loss?: number;
}

/** y[t, o] = Σ_i x[t, i] (W[o, i] + ΔW[o, i]) + b[o] for T rows. */
function refLinear(
  x: Float64Array,
  T: number,
  dIn: number,
  W: ArrayLike<number>,
  bias: ArrayLike<number> | undefined,
  dOut: number,
  dW?: Float64Array,
): Float64Array {
  const y = new Float64Array(T * dOut);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < dOut; o++) {
      let v = bias ? bias[o] : 0;
      for (let i = 0; i < dIn; i++) v += x[t * dIn + i] * (W[o * dIn + i] + (dW ? dW[o * dIn + i] : 0));
      y[t * dOut + o] = v;
    }
  }
  return y;
}

function refLayerNorm(x: Float64Array, T: number, d: number, w: ArrayLike<number>, b: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[t * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[t * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) y[t * d + i] = (x[t * d + i] - mean) * inv * w[i] + b[i];
  }
  return y;
}

const geluExact = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** Multi-head self-attention of one sequence; `keyOk[t]` false masks key t out. */
function refAttention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, d: number, H: number, keyOk?: boolean[]): Float64Array {
  const dh = d / H;
  const ctx = new Float64Array(T * d);
  const scores = new Float64Array(T);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      let max = -Infinity;
      for (let u = 0; u < T; u++) {
        if (keyOk && !keyOk[u]) continue;
        let sc = 0;
        for (let j = 0; j < dh; j++) sc += q[t * d + h * dh + j] * k[u * d + h * dh + j];
        scores[u] = sc / Math.sqrt(dh);
        max = Math.max(max, scores[u]);
      }
      let z = 0;
      for (let u = 0; u < T; u++) if (!keyOk || keyOk[u]) z += Math.exp(scores[u] - max);
      for (let u = 0; u < T; u++) {
        if (keyOk && !keyOk[u]) continue;
        const pr = Math.exp(scores[u] - max) / z;
        for (let j = 0; j < dh; j++) ctx[t * d + h * dh + j] += pr * v[u * d + h * dh + j];
      }
    }
  }
  return ctx;
}

const addInto = (a: Float64Array, b: Float64Array) => {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return a;
};

function meanCrossEntropy(logits: Float64Array, labels: ArrayLike<number>, C: number): number {
  let loss = 0;
  for (let n = 0; n < labels.length; n++) {
    const row = logits.subarray(n * C, (n + 1) * C);
    const max = Math.max(...row);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    loss += Math.log(z) + max - row[labels[n]];
  }
  return loss / labels.length;
}

function num(raw: RawConfig, k: string, fallback?: number): number {
  const v = raw[k] ?? fallback;
  if (typeof v !== "number") throw new Error(`reference: config has no number "${k}"`);
  return v;
}

/**
 * ViTForImageClassification: Conv2d(kernel = stride = patch) patches in row-major patch order,
 * [CLS] + patches + positions, pre-norm blocks (LN → attention → residual, LN → GELU MLP →
 * residual), final LayerNorm, classifier on [CLS].
 */

/** A weight of the reference forward by name; a missing one names itself. */
function weightGetter<T>(w: ReadonlyMap<string, T>): (k: string) => T {
  return (k) => {
    const v = w.get(k);
    if (!v) throw new Error(`reference: no weight "${k}"`);
    return v;
  };
}

export function refViT(
  raw: RawConfig,
  w: RefWeights,
  px: ArrayLike<number>,
  B: number,
  opts: { deltas?: Map<string, Float64Array>; labels?: ArrayLike<number> } = {},
): RefOutputs {
  const d = num(raw, "hidden_size");
  const H = num(raw, "num_attention_heads");
  const L = num(raw, "num_hidden_layers");
  const I = num(raw, "intermediate_size");
  const S = num(raw, "image_size");
  const p = num(raw, "patch_size");
  const C = num(raw, "num_channels", 3);
  const eps = num(raw, "layer_norm_eps", 1e-12);
  const qkvBias = raw.qkv_bias ?? true;
  const nl = w.get("classifier.bias")!.length;
  const g = S / p;
  const T = g * g + 1;
  const W = weightGetter(w);
  const logits = new Float64Array(B * nl);
  const last = new Float64Array(B * T * d);
  for (let bi = 0; bi < B; bi++) {
    let h: Float64Array = new Float64Array(T * d);
    const cw = W("vit.embeddings.patch_embeddings.projection.weight");
    const cb = W("vit.embeddings.patch_embeddings.projection.bias");
    const cls = W("vit.embeddings.cls_token");
    const pos = W("vit.embeddings.position_embeddings");
    for (let o = 0; o < d; o++) h[o] = cls[o] + pos[o];
    for (let gy = 0; gy < g; gy++)
      for (let gx = 0; gx < g; gx++) {
        const t = 1 + gy * g + gx;
        for (let o = 0; o < d; o++) {
          let v = cb[o];
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < p; ky++)
              for (let kx = 0; kx < p; kx++) {
                v += cw[((o * C + c) * p + ky) * p + kx] * px[((bi * C + c) * S + gy * p + ky) * S + gx * p + kx];
              }
          h[t * d + o] = v + pos[t * d + o];
        }
      }
    for (let l = 0; l < L; l++) {
      const lp = `vit.encoder.layer.${l}`;
      const lin = (x: Float64Array, path: string, dIn: number, dOut: number, bias = true) =>
        refLinear(x, T, dIn, W(`${path}.weight`), bias ? W(`${path}.bias`) : undefined, dOut, opts.deltas?.get(`${path}.weight`));
      const x = refLayerNorm(h, T, d, W(`${lp}.layernorm_before.weight`), W(`${lp}.layernorm_before.bias`), eps);
      const a = `${lp}.attention.attention`;
      const ctx = refAttention(
        lin(x, `${a}.query`, d, d, qkvBias !== false),
        lin(x, `${a}.key`, d, d, qkvBias !== false),
        lin(x, `${a}.value`, d, d, qkvBias !== false),
        T,
        d,
        H,
      );
      h = addInto(lin(ctx, `${lp}.attention.output.dense`, d, d), h);
      const m = lin(refLayerNorm(h, T, d, W(`${lp}.layernorm_after.weight`), W(`${lp}.layernorm_after.bias`), eps), `${lp}.intermediate.dense`, d, I).map(
        geluExact,
      );
      h = addInto(lin(m, `${lp}.output.dense`, I, d), h);
    }
    const y = refLayerNorm(h, T, d, W("vit.layernorm.weight"), W("vit.layernorm.bias"), eps);
    last.set(y, bi * T * d);
    logits.set(refLinear(y.subarray(0, d), 1, d, W("classifier.weight"), W("classifier.bias"), nl), bi * nl);
  }
  return { logits, lastHiddenState: last, loss: opts.labels ? meanCrossEntropy(logits, opts.labels, nl) : undefined };
}

/** RoBERTa's position ids (create_position_ids_from_input_ids): pad + cumulative count of non-pads; pads keep pad. */
export function refPositionIds(ids: ArrayLike<number>, pad: number): number[] {
  let count = 0;
  return Array.from(ids, (id) => (id === pad ? pad : pad + ++count));
}

/**
 * RobertaForSequenceClassification: word + position + token-type embeddings → LayerNorm,
 * post-norm layers (attention with padded keys masked → residual → LN, GELU MLP → residual →
 * LN), head dense → tanh → out_proj on <s>.
 */
export function refRoberta(
  raw: RawConfig,
  w: RefWeights,
  ids: ArrayLike<number>,
  mask: ArrayLike<number>,
  B: number,
  opts: { deltas?: Map<string, Float64Array>; labels?: ArrayLike<number>; tokenTypes?: ArrayLike<number> } = {},
): RefOutputs {
  const d = num(raw, "hidden_size");
  const H = num(raw, "num_attention_heads");
  const L = num(raw, "num_hidden_layers");
  const I = num(raw, "intermediate_size");
  const eps = num(raw, "layer_norm_eps", 1e-12);
  const pad = num(raw, "pad_token_id", 1);
  const T = ids.length / B;
  const nl = w.get("classifier.out_proj.bias")!.length;
  const W = weightGetter(w);
  const logits = new Float64Array(B * nl);
  const last = new Float64Array(B * T * d);
  for (let bi = 0; bi < B; bi++) {
    const row = Array.from({ length: T }, (_, t) => Number(ids[bi * T + t]));
    const pos = refPositionIds(row, pad);
    const keyOk = Array.from({ length: T }, (_, t) => Number(mask[bi * T + t]) !== 0);
    let h: Float64Array = new Float64Array(T * d);
    const we = W("roberta.embeddings.word_embeddings.weight");
    const pe = W("roberta.embeddings.position_embeddings.weight");
    const te = W("roberta.embeddings.token_type_embeddings.weight");
    for (let t = 0; t < T; t++) {
      const tt = opts.tokenTypes ? Number(opts.tokenTypes[bi * T + t]) : 0;
      for (let o = 0; o < d; o++) h[t * d + o] = we[row[t] * d + o] + pe[pos[t] * d + o] + te[tt * d + o];
    }
    h = refLayerNorm(h, T, d, W("roberta.embeddings.LayerNorm.weight"), W("roberta.embeddings.LayerNorm.bias"), eps);
    for (let l = 0; l < L; l++) {
      const lp = `roberta.encoder.layer.${l}`;
      const lin = (x: Float64Array, path: string, dIn: number, dOut: number) =>
        refLinear(x, T, dIn, W(`${path}.weight`), W(`${path}.bias`), dOut, opts.deltas?.get(`${path}.weight`));
      const a = `${lp}.attention.self`;
      const ctx = refAttention(lin(h, `${a}.query`, d, d), lin(h, `${a}.key`, d, d), lin(h, `${a}.value`, d, d), T, d, H, keyOk);
      const x = refLayerNorm(
        addInto(lin(ctx, `${lp}.attention.output.dense`, d, d), h),
        T,
        d,
        W(`${lp}.attention.output.LayerNorm.weight`),
        W(`${lp}.attention.output.LayerNorm.bias`),
        eps,
      );
      const m = lin(x, `${lp}.intermediate.dense`, d, I).map(geluExact);
      h = refLayerNorm(addInto(lin(m, `${lp}.output.dense`, I, d), x), T, d, W(`${lp}.output.LayerNorm.weight`), W(`${lp}.output.LayerNorm.bias`), eps);
    }
    last.set(h, bi * T * d);
    const pooled = refLinear(h.subarray(0, d), 1, d, W("classifier.dense.weight"), W("classifier.dense.bias"), d).map(Math.tanh);
    logits.set(refLinear(pooled, 1, d, W("classifier.out_proj.weight"), W("classifier.out_proj.bias"), nl), bi * nl);
  }
  return { logits, lastHiddenState: last, loss: opts.labels ? meanCrossEntropy(logits, opts.labels, nl) : undefined };
}

/** The reference's view of a loaded or generated weight map. */
export function refWeights(w: WeightMap | Map<string, { data: ArrayLike<number> }>): RefWeights {
  return new Map([...w].map(([k, t]) => [k, t.data]));
}
