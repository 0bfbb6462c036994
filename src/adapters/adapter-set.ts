/**
 * An adapter attached to one model: its config, its shape groups (each with its construction,
 * ranks and sites), and its parameters, named as they are saved
 * (`base_model.model.<path>.lora_A.weight` for LoRA as PEFT does; `tenslora.<t>.core` and
 * `tenslora.<t>.factors.<i>` for TensLoRA's first group, `tenslora.g<g>.<t>.…` for group g ≥ 1).
 * Tensors spanning layers are owned once here; each adapted projection reads a slice.
 */
import type { Tensor, WeightMap } from "../nn/params.ts";
import type { Dense } from "../tensor/dense.ts";
import { kaimingUniform, normal, orthogonal } from "../tensor/init.ts";
import { Rng } from "../tensor/random.ts";
import type { AdapterConfig, AdapterGroup } from "./config.ts";
import { methodOf } from "./methods.ts";
import type { AdapterState } from "./reference.ts";

/** An adapter ready to train or merge: its configuration, its groups of sites and its tensors by name. */
export interface AdapterSet {
  config: AdapterConfig;
  groups: AdapterGroup[];
  tensors: WeightMap;
}

/** Expected name → shape of every parameter of one group. */
export function groupParameterShapes(config: AdapterConfig, group: AdapterGroup): Map<string, number[]> {
  return new Map(
    methodOf(group.construction)
      .params(config, group)
      .map((p) => [p.name, p.shape]),
  );
}

/** Expected name → shape of every adapter parameter. */
export function adapterParameterShapes(config: AdapterConfig, groups: AdapterGroup[]): Map<string, number[]> {
  return new Map(groups.flatMap((g) => [...groupParameterShapes(config, g)]));
}

/** The number of trainable parameters: every group's tensors. */
export function adapterParamCount(set: AdapterSet): number {
  let n = 0;
  for (const t of set.tensors.values()) n += t.data.length;
  return n;
}

const f32 = (d: Dense): Float32Array => (d.data instanceof Float32Array ? d.data : Float32Array.from(d.data));

/** The names of the set's tensors that start at zero (one per adapted tensor or LoRA pair): LoRA's B and each factorisation's zeroed parameter. */
export function zeroInitializedTensors(set: AdapterSet): Set<string> {
  return new Set(
    set.groups.flatMap((g) =>
      methodOf(g.construction)
        .params(set.config, g)
        .filter((p) => p.zero)
        .map((p) => p.name),
    ),
  );
}

/**
 * Fresh parameters: the update is zero (LoRA B = 0; each factorisation zeroes one parameter:
 * Tucker's core, CP's first factor, TT's first output-side core), and every tensor draws its own
 * factors (the official code seeds every tensor alike; we do not). A factor or TT core
 * [r, I, r'] is initialised as the matrix [r·I, r'] (orthogonal: left-orthogonal TT cores).
 */
export function createAdapterSet(config: AdapterConfig, groups: AdapterGroup[], seed = 0): AdapterSet {
  const rng = new Rng(seed);
  const tensors: WeightMap = new Map();
  let draw = 0;
  for (const group of groups) {
    for (const { name, shape: s, zero, init = config.init, std } of methodOf(group.construction).params(config, group)) {
      const r = rng.fork(draw++);
      const n = s.reduce((a, b) => a * b, 1);
      const cols = s[s.length - 1];
      let data: Float32Array;
      if (zero) data = new Float32Array(n);
      else if (init === "orthogonal") data = f32(orthogonal(r, n / cols, cols));
      else if (init === "normal") data = f32(normal(r, s, std));
      else data = f32(kaimingUniform(r, s, cols));
      tensors.set(name, { shape: s, data });
    }
  }
  return { config, groups, tensors };
}

const dense = (t: Tensor): Dense => ({ shape: t.shape, data: t.data });

/** One group's tensors as the CPU algebra sees them (for merge, analysis and references). */
export function groupState(set: AdapterSet, group: AdapterGroup): AdapterState {
  const { config, tensors } = set;
  const list = methodOf(group.construction).tensors(config, group, (k) => dense(tensors.get(k)!));
  return { construction: group.construction, shape: group.shape, tensors: list, headLayout: config.headLayout, scaling: config.scaling };
}
