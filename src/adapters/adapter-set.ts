/**
 * An adapter attached to one model: its config, its shape groups (each with its construction,
 * ranks and sites), and its parameters, named as they are saved
 * (`base_model.model.<path>.lora_A.weight` for LoRA as PEFT does; `tenslora.<t>.core` and
 * `tenslora.<t>.factors.<i>` for TensLoRA's first group, `tenslora.g<g>.<t>.…` for group g ≥ 1).
 * Tensors spanning layers are owned once here; each adapted projection reads a slice.
 */
import type { Tensor, WeightMap } from "../nn/params.ts";
import type { Dense } from "../tensor/dense.ts";
import { kaimingUniform, normal, orthogonal, tuckerNormalStd } from "../tensor/init.ts";
import { Rng } from "../tensor/random.ts";
import type { AdapterConfig, AdapterGroup } from "./config.ts";
import { CONSTRUCTION_SPECS, modeSizes, tensorCount } from "./constructions.ts";
import type { AdapterState, AdapterTensor } from "./reference.ts";
import type { LinearSite } from "./sites.ts";

export interface AdapterSet {
  config: AdapterConfig;
  groups: AdapterGroup[];
  tensors: WeightMap;
}

export const loraKeys = (site: LinearSite) => ({
  a: `base_model.model.${site.path}.lora_A.weight`,
  b: `base_model.model.${site.path}.lora_B.weight`,
});
const prefix = (g: number) => `tenslora.${g === 0 ? "" : `g${g}.`}`;
export const coreKey = (t: number, g = 0) => `${prefix(g)}${t}.core`;
export const factorKey = (t: number, i: number, g = 0) => `${prefix(g)}${t}.factors.${i}`;

const isLora = (group: AdapterGroup) => CONSTRUCTION_SPECS[group.construction].kind === "lora";
const usesCp = (config: AdapterConfig, group: AdapterGroup) => config.factorization === "cp" && !isLora(group);

/** Expected name → shape of every parameter of one group. */
export function groupParameterShapes(config: AdapterConfig, group: AdapterGroup): Map<string, number[]> {
  const m = new Map<string, number[]>();
  if (isLora(group)) {
    const r = group.ranks[0];
    for (const site of group.grid.flat()) {
      const k = loraKeys(site);
      m.set(k.a, [r, site.inFeatures]);
      m.set(k.b, [site.outFeatures, r]);
    }
    return m;
  }
  const sizes = modeSizes(group.construction, group.shape);
  const cp = usesCp(config, group);
  for (let t = 0; t < tensorCount(group.construction, group.shape); t++) {
    if (!cp) m.set(coreKey(t, group.index), [...group.ranks]);
    sizes.forEach((n, i) => m.set(factorKey(t, i, group.index), [n, cp ? group.ranks[0] : group.ranks[i]]));
  }
  return m;
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

/**
 * Fresh parameters: the update is zero (LoRA B = 0, Tucker core = 0, CP first factor = 0), and
 * every tensor draws its own factors (the official code seeds every tensor alike; we do not).
 */
export function createAdapterSet(config: AdapterConfig, groups: AdapterGroup[], seed = 0): AdapterSet {
  const rng = new Rng(seed);
  const tensors: WeightMap = new Map();
  let draw = 0;
  for (const group of groups) {
    const cp = usesCp(config, group);
    const std = !isLora(group) && !cp ? tuckerNormalStd(group.ranks) : 1;
    for (const [name, s] of groupParameterShapes(config, group)) {
      const r = rng.fork(draw++);
      const n = s.reduce((a, b) => a * b, 1);
      const zero = name.endsWith(".lora_B.weight") || name.endsWith(".core") || (cp && name.endsWith(".factors.0"));
      let data: Float32Array;
      if (zero) data = new Float32Array(n);
      else if (name.endsWith(".lora_A.weight")) data = f32(kaimingUniform(r, s, s[1]));
      else if (config.init === "orthogonal") data = f32(orthogonal(r, s[0], s[1]));
      else if (config.init === "normal") data = f32(normal(r, s, std));
      else data = f32(kaimingUniform(r, s, s[1]));
      tensors.set(name, { shape: s, data });
    }
  }
  return { config, groups, tensors };
}

const dense = (t: Tensor): Dense => ({ shape: t.shape, data: t.data });

/** One group's tensors as the CPU algebra sees them (for merge, analysis and references). */
export function groupState(set: AdapterSet, group: AdapterGroup): AdapterState {
  const { config, tensors } = set;
  const { shape, grid } = group;
  const get = (k: string) => dense(tensors.get(k)!);
  const list: AdapterTensor[] = [];
  if (isLora(group)) {
    for (let p = 0; p < grid.length; p++) {
      for (let l = 0; l < shape.layers; l++) {
        const k = loraKeys(grid[p][l]);
        list[p * shape.layers + l] = { a: get(k.a), b: get(k.b) };
      }
    }
  } else {
    const modes = modeSizes(group.construction, shape).length;
    for (let t = 0; t < tensorCount(group.construction, shape); t++) {
      const factors = Array.from({ length: modes }, (_, i) => get(factorKey(t, i, group.index)));
      list.push(usesCp(config, group) ? { factors } : { core: get(coreKey(t, group.index)), factors });
    }
  }
  return { construction: group.construction, shape, tensors: list, headLayout: config.headLayout, scaling: config.scaling };
}
