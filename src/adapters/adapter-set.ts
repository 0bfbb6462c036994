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
import { CONSTRUCTION_SPECS, tensorCount, tensorModes } from "./constructions.ts";
import { FACTORIZATIONS } from "./factorizations/index.ts";
import type { ParamSpec } from "./factorizations/types.ts";
import type { AdapterState, AdapterTensor } from "./reference.ts";
import type { LinearSite } from "../nn/sites.ts";

/** An adapter ready to train or merge: its configuration, its groups of sites and its tensors by name. */
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
/** The file key of parameter `key` ("core", "factors.<i>", "cores.<i>") of tensor t in group g. */
export const tensorKey = (t: number, key: string, g = 0) => `${prefix(g)}${t}.${key}`;
export const factorKey = (t: number, i: number, g = 0) => tensorKey(t, `factors.${i}`, g);

const isLora = (group: AdapterGroup) => CONSTRUCTION_SPECS[group.construction].kind === "lora";

/** A group's tensor parameters: name → its spec, for every tensor. */
function tensorParams(config: AdapterConfig, group: AdapterGroup): Map<string, ParamSpec> {
  const specs = FACTORIZATIONS[config.factorization].params(tensorModes(group.construction, group.shape), group.ranks);
  const m = new Map<string, ParamSpec>();
  for (let t = 0; t < tensorCount(group.construction, group.shape); t++) for (const p of specs) m.set(tensorKey(t, p.key, group.index), p);
  return m;
}

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
  for (const [k, p] of tensorParams(config, group)) m.set(k, p.shape);
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

/** The names of the set's tensors that start at zero (one per adapted tensor or LoRA pair): LoRA's B and each factorisation's zeroed parameter. */
export function zeroInitializedTensors(set: AdapterSet): Set<string> {
  return new Set(
    set.groups.flatMap((g) =>
      isLora(g)
        ? [...groupParameterShapes(set.config, g).keys()].filter((k) => k.endsWith(".lora_B.weight"))
        : [...tensorParams(set.config, g)].filter(([, p]) => p.zero).map(([name]) => name),
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
  const add = (name: string, s: number[], zero: boolean, std: number) => {
    const r = rng.fork(draw++);
    const n = s.reduce((a, b) => a * b, 1);
    const cols = s[s.length - 1];
    let data: Float32Array;
    if (zero) data = new Float32Array(n);
    else if (name.endsWith(".lora_A.weight")) data = f32(kaimingUniform(r, s, s[1]));
    else if (config.init === "orthogonal") data = f32(orthogonal(r, n / cols, cols));
    else if (config.init === "normal") data = f32(normal(r, s, std));
    else data = f32(kaimingUniform(r, s, cols));
    tensors.set(name, { shape: s, data });
  };
  for (const group of groups) {
    if (isLora(group)) {
      for (const [name, s] of groupParameterShapes(config, group)) add(name, s, name.endsWith(".lora_B.weight"), 1);
      continue;
    }
    const std = FACTORIZATIONS[config.factorization].initStd(group.ranks);
    for (const [name, p] of tensorParams(config, group)) add(name, p.shape, p.zero, std);
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
    const { factorization } = config;
    const specs = FACTORIZATIONS[factorization].params(tensorModes(group.construction, shape), group.ranks);
    for (let t = 0; t < tensorCount(group.construction, shape); t++) {
      list.push({ factorization, ranks: group.ranks, params: new Map(specs.map((p) => [p.key, get(tensorKey(t, p.key, group.index))])) });
    }
  }
  return { construction: group.construction, shape, tensors: list, headLayout: config.headLayout, scaling: config.scaling };
}
