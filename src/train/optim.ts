/**
 * Optimisers over one flat Float32Array of trainable parameters with a layout of named segments
 * (the form the training graph feeds and fetches), plus global-norm gradient clipping.
 *
 * An optimiser is a `{ init, update }` pair with no hidden state: everything that changes between
 * steps lives in the state value that `init` returns. `update` writes the new parameters and
 * moments into the buffers it is given (in place: a full fine-tune's buffers are hundreds of MB,
 * too large to reallocate every step). Arithmetic runs in float64; only stored values are rounded
 * to float32, and the order of operations is fixed, so a run repeats bit for bit.
 */

import { ConfigError, FormatError, ShapeError } from "../errors.ts";

/** One named parameter tensor inside the flat buffer: elements `offset … offset + size - 1`. */
export interface Segment {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/** Where each named parameter lives in the flat buffer of `size` elements. */
export interface ParamLayout {
  readonly size: number;
  readonly segments: readonly Segment[];
}

/** Lays segments out back to back in the given order. */
export function packLayout(sizes: Iterable<readonly [name: string, size: number]>): ParamLayout {
  const segments: Segment[] = [];
  let offset = 0;
  for (const [name, size] of sizes) {
    segments.push({ name, offset, size });
    offset += size;
  }
  const layout = { size: offset, segments };
  validateLayout(layout);
  return layout;
}

/** Copies named tensors into one flat buffer (insertion order) and returns it with its layout. */
export function flattenParams(params: ReadonlyMap<string, Float32Array>): {
  flat: Float32Array;
  layout: ParamLayout;
} {
  const layout = packLayout([...params].map(([name, t]) => [name, t.length] as const));
  const flat = new Float32Array(layout.size);
  for (const s of layout.segments) flat.set(params.get(s.name)!, s.offset);
  return { flat, layout };
}

/** Per-name views (no copies) into a flat buffer: writes through them change the buffer. */
export function segmentViews(flat: Float32Array, layout: ParamLayout): Map<string, Float32Array> {
  checkLength("flat buffer", flat, layout);
  return new Map(layout.segments.map((s) => [s.name, flat.subarray(s.offset, s.offset + s.size)]));
}

/** Throws unless names are unique and segments are non-empty, in bounds and non-overlapping. */
export function validateLayout(layout: ParamLayout): void {
  if (!Number.isSafeInteger(layout.size) || layout.size < 0) {
    throw new ShapeError(`layout size must be a non-negative integer; got ${layout.size}`);
  }
  const names = new Set<string>();
  for (const s of layout.segments) {
    if (names.has(s.name)) {
      throw new ShapeError(`layout segment names must be unique; "${s.name}" appears twice`);
    }
    names.add(s.name);
    const ok = Number.isSafeInteger(s.offset) && Number.isSafeInteger(s.size) && s.offset >= 0;
    if (!ok || s.size < 1 || s.offset + s.size > layout.size) {
      throw new ShapeError(`layout segment "${s.name}" must hold 1 or more elements inside [0, ${layout.size}); ` + `got offset ${s.offset}, size ${s.size}`);
    }
  }
  const sorted = [...layout.segments].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (prev.offset + prev.size > sorted[i].offset) {
      throw new ShapeError(
        `layout segments must not overlap; "${prev.name}" ends at ${prev.offset + prev.size} ` + `but "${sorted[i].name}" starts at ${sorted[i].offset}`,
      );
    }
  }
}

/** A stateless optimiser: `init` makes the state, `update` applies one step at learning rate `lr`. */
export interface Optimizer<S> {
  init(layout: ParamLayout): S;
  /** Overwrites `params` and `state` in place; elements outside every segment stay unchanged. */
  update(state: S, params: Float32Array, grads: Float32Array, lr: number): void;
}

/**
 * Options for the segments whose name matches (first matching rule wins), like a PyTorch param
 * group: e.g. `{ match: /(bias|LayerNorm\.weight)$/, weightDecay: 0 }`.
 */
export interface ParamGroupRule {
  match: RegExp | ((name: string) => boolean);
  /** Replaces the optimiser's `weightDecay` for these segments. */
  weightDecay?: number;
  /** Multiplies the scheduled learning rate for these segments (also in the decay term). */
  lrScale?: number;
}

export interface AdamWOptions {
  /** Decay rates of the first and second moment averages; PyTorch's defaults. */
  betas?: readonly [number, number];
  /** Added to √v̂ in the denominator, as PyTorch does (not inside the square root). */
  eps?: number;
  /** Decoupled weight decay λ: p ← p − lr·λ·p before the Adam step (Loshchilov & Hutter). */
  weightDecay?: number;
  groups?: readonly ParamGroupRule[];
}

/** AdamW state: `step` = updates applied so far; `m`, `v` = first and second moments. */
export interface AdamWState {
  step: number;
  readonly layout: ParamLayout;
  readonly m: Float32Array;
  readonly v: Float32Array;
}

/** The JSON part of a saved optimiser state; the moments go to a tensor file. */
export interface AdamWScalars {
  kind: "adamw";
  step: number;
}

export interface AdamW extends Optimizer<AdamWState> {
  /** Copies of the moments keyed `exp_avg.<segment>` / `exp_avg_sq.<segment>` (PyTorch's names). */
  stateTensors(state: AdamWState): { tensors: Record<string, Float32Array>; scalars: AdamWScalars };
  /** Rebuilds a state saved by `stateTensors`, bit for bit; every segment must be present. */
  loadStateTensors(layout: ParamLayout, tensors: Record<string, Float32Array>, scalars: AdamWScalars): AdamWState;
}

/**
 * `torch.optim.AdamW` (amsgrad off). Per element, at step t with learning rate γ:
 *   p ← p (1 − γλ);  m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²
 *   p ← p − (γ / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 * @example
 *   const opt = adamw({ weightDecay: 0.01, groups: [{ match: /bias$/, weightDecay: 0 }] });
 *   const state = opt.init(layout);
 *   opt.update(state, params, grads, schedule(step));
 */
export function adamw(options: AdamWOptions = {}): AdamW {
  const [beta1, beta2] = options.betas ?? [0.9, 0.999];
  const eps = options.eps ?? 1e-8;
  const weightDecay = options.weightDecay ?? 1e-2;
  const groups = options.groups ?? [];
  checkRange("betas[0]", beta1, 0, 1, "[0, 1)");
  checkRange("betas[1]", beta2, 0, 1, "[0, 1)");
  checkNonNegative("eps", eps);
  checkNonNegative("weightDecay", weightDecay);
  groups.forEach((g, i) => checkRule(g, i));

  const segmentOptions = (name: string) => {
    const rule = groups.find((g) => (g.match instanceof RegExp ? g.match.test(name) : g.match(name)));
    return { weightDecay: rule?.weightDecay ?? weightDecay, lrScale: rule?.lrScale ?? 1 };
  };

  const init = (layout: ParamLayout): AdamWState => {
    validateLayout(layout);
    return { step: 0, layout, m: new Float32Array(layout.size), v: new Float32Array(layout.size) };
  };

  return {
    init,

    update(state, params, grads, lr) {
      checkNonNegative("learning rate", lr);
      checkLength("params", params, state.layout);
      checkLength("grads", grads, state.layout);
      const t = state.step + 1;
      const bc1 = 1 - beta1 ** t;
      const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
      const { m, v } = state;
      for (const seg of state.layout.segments) {
        const opt = segmentOptions(seg.name);
        const segLr = lr * opt.lrScale;
        const decay = 1 - segLr * opt.weightDecay;
        const stepSize = segLr / bc1;
        for (let i = seg.offset, end = seg.offset + seg.size; i < end; i++) {
          const g = grads[i];
          const mi = beta1 * m[i] + (1 - beta1) * g;
          const vi = beta2 * v[i] + (1 - beta2) * g * g;
          m[i] = mi;
          v[i] = vi;
          params[i] = params[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
        }
      }
      state.step = t;
    },

    stateTensors(state) {
      const tensors: Record<string, Float32Array> = {};
      for (const s of state.layout.segments) {
        tensors[`exp_avg.${s.name}`] = state.m.slice(s.offset, s.offset + s.size);
        tensors[`exp_avg_sq.${s.name}`] = state.v.slice(s.offset, s.offset + s.size);
      }
      return { tensors, scalars: { kind: "adamw", step: state.step } };
    },

    loadStateTensors(layout, tensors, scalars) {
      if (scalars.kind !== "adamw" || !Number.isSafeInteger(scalars.step) || scalars.step < 0) {
        throw new FormatError(`saved optimiser state must be {kind: "adamw", step: integer ≥ 0}; ` + `got ${JSON.stringify(scalars)}`);
      }
      const state = init(layout);
      state.step = scalars.step;
      const expected = new Set<string>();
      for (const s of layout.segments) {
        for (const [prefix, target] of [
          ["exp_avg", state.m],
          ["exp_avg_sq", state.v],
        ] as const) {
          const key = `${prefix}.${s.name}`;
          expected.add(key);
          const saved = tensors[key];
          if (saved === undefined || saved.length !== s.size) {
            throw new FormatError(
              `saved optimiser state needs "${key}" with ${s.size} elements; ` +
                (saved === undefined ? "it is missing" : `it has ${saved.length}`) +
                ". Resume with the same trainable parameters the checkpoint was written with",
            );
          }
          target.set(saved, s.offset);
        }
      }
      const extra = Object.keys(tensors).filter((k) => !expected.has(k));
      if (extra.length > 0) {
        throw new FormatError(
          `saved optimiser state has tensors for parameters that are not trainable now: ` + `${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ", …" : ""}`,
        );
      }
      return state;
    },
  };
}

/**
 * Scales gradients in place so their joint L2 norm is at most `maxNorm`, as
 * `torch.nn.utils.clip_grad_norm_` does (factor maxNorm / (norm + 1e-6) when below 1), and returns
 * the norm before clipping. A non-finite norm leaves the gradients untouched: the caller should
 * skip the step (PyTorch would turn every gradient into NaN).
 */
export function clipByGlobalNorm(grads: Float32Array | Iterable<Float32Array>, maxNorm: number): number {
  if (!(maxNorm > 0 && Number.isFinite(maxNorm))) {
    throw new ConfigError(`maxNorm must be a positive finite number; got ${maxNorm}`);
  }
  const tensors = grads instanceof Float32Array ? [grads] : [...grads];
  let sumSq = 0;
  for (const t of tensors) for (let i = 0; i < t.length; i++) sumSq += t[i] * t[i];
  const norm = Math.sqrt(sumSq);
  const coef = maxNorm / (norm + 1e-6);
  if (Number.isFinite(norm) && coef < 1) {
    for (const t of tensors) for (let i = 0; i < t.length; i++) t[i] *= coef;
  }
  return norm;
}

function checkLength(what: string, buf: Float32Array, layout: ParamLayout): void {
  if (buf.length !== layout.size) {
    throw new ShapeError(`${what} must have the layout's ${layout.size} elements; got ${buf.length}`);
  }
}

function checkRange(what: string, x: number, lo: number, hi: number, range: string): void {
  if (!(x >= lo && x < hi)) throw new ConfigError(`${what} must lie in ${range}; got ${x}`);
}

function checkNonNegative(what: string, x: number): void {
  if (!(x >= 0 && Number.isFinite(x))) {
    throw new ConfigError(`${what} must be a finite number ≥ 0; got ${x}`);
  }
}

function checkRule(rule: ParamGroupRule, i: number): void {
  // A /g or /y regex keeps lastIndex between test() calls, so matching would depend on history.
  if (rule.match instanceof RegExp && /[gy]/.test(rule.match.flags)) {
    throw new ConfigError(`groups[${i}].match must not use the g or y flag (stateful matching); got ${rule.match}`);
  }
  if (rule.weightDecay !== undefined) checkNonNegative(`groups[${i}].weightDecay`, rule.weightDecay);
  if (rule.lrScale !== undefined) checkNonNegative(`groups[${i}].lrScale`, rule.lrScale);
}
