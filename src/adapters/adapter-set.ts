/**
 * An adapter family attached to one model: its config, the model shape it covers, the linear
 * layers it adapts, and its parameters, named as they are saved
 * (`base_model.model.<path>.lora_A.weight` for LoRA as PEFT does; `tenslora.<t>.core` and
 * `tenslora.<t>.factors.<i>` for TensLoRA). Tensors spanning layers are owned once here; each
 * adapted projection reads a slice.
 */
import type { LinearSite } from "../models/types.ts";
import type { Tensor, WeightMap } from "../nn/params.ts";
import type { Dense } from "../tensor/dense.ts";
import { kaimingUniform, normal, orthogonal, tuckerNormalStd } from "../tensor/init.ts";
import { Rng } from "../tensor/random.ts";
import type { AdapterConfig } from "./config.ts";
import { CONSTRUCTION_SPECS, type ModelShape, modeSizes, tensorCount } from "./constructions.ts";
import type { AdapterState, AdapterTensor } from "./reference.ts";
import { resolveTargets } from "./targets.ts";

export interface AdapterSet {
  config: AdapterConfig;
  shape: ModelShape;
  /** grid[p][l]: the layer adapted by projection p (target p) in block l. */
  grid: LinearSite[][];
  tensors: WeightMap;
}

export const loraKeys = (site: LinearSite) => ({
  a: `base_model.model.${site.path}.lora_A.weight`,
  b: `base_model.model.${site.path}.lora_B.weight`,
});
export const coreKey = (t: number) => `tenslora.${t}.core`;
export const factorKey = (t: number, i: number) => `tenslora.${t}.factors.${i}`;

/** The adapter's view of a model: the targets' shared shape [dOut, dIn], heads and depth. */
export function adapterShape(sites: LinearSite[], targets: string[], heads: number, layers: number): { shape: ModelShape; grid: LinearSite[][] } {
  const grid = resolveTargets(sites, targets, layers);
  const first = grid[0][0];
  return { grid, shape: { dIn: first.inFeatures, dOut: first.outFeatures, heads, layers, projections: [...targets] } };
}

/** Expected name → shape of every adapter parameter. */
export function adapterParameterShapes(config: AdapterConfig, shape: ModelShape, grid: LinearSite[][]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  if (CONSTRUCTION_SPECS[config.construction].kind === "lora") {
    const r = config.ranks[0];
    for (const row of grid) {
      for (const site of row) {
        const k = loraKeys(site);
        m.set(k.a, [r, site.inFeatures]);
        m.set(k.b, [site.outFeatures, r]);
      }
    }
    return m;
  }
  const sizes = modeSizes(config.construction, shape);
  const cp = config.factorization === "cp";
  for (let t = 0; t < tensorCount(config.construction, shape); t++) {
    if (!cp) m.set(coreKey(t), [...config.ranks]);
    sizes.forEach((n, i) => m.set(factorKey(t, i), [n, cp ? config.ranks[0] : config.ranks[i]]));
  }
  return m;
}

const f32 = (d: Dense): Float32Array => (d.data instanceof Float32Array ? d.data : Float32Array.from(d.data));

/** The tensor of each adapter that starts at zero (LoRA B, Tucker core, CP's first factor), so the update does. */
export function zeroInitialized(name: string, config: AdapterConfig): boolean {
  return name.endsWith(".lora_B.weight") || name.endsWith(".core") || (config.factorization === "cp" && name.endsWith(".factors.0"));
}

/**
 * Fresh parameters: the update is zero (LoRA B = 0, Tucker core = 0, CP first factor = 0), and
 * every tensor draws its own factors (the official code seeds every tensor alike; we do not).
 */
export function createAdapterSet(config: AdapterConfig, shape: ModelShape, grid: LinearSite[][], seed = 0): AdapterSet {
  const rng = new Rng(seed);
  const shapes = adapterParameterShapes(config, shape, grid);
  const tensors: WeightMap = new Map();
  let draw = 0;
  const std = CONSTRUCTION_SPECS[config.construction].kind === "tensor" && config.factorization === "tucker" ? tuckerNormalStd(config.ranks) : 1;
  for (const [name, s] of shapes) {
    const r = rng.fork(draw++);
    const n = s.reduce((a, b) => a * b, 1);
    const zero = zeroInitialized(name, config);
    let data: Float32Array;
    if (zero) data = new Float32Array(n);
    else if (name.endsWith(".lora_A.weight")) data = f32(kaimingUniform(r, s, s[1]));
    else if (config.init === "orthogonal") data = f32(orthogonal(r, s[0], s[1]));
    else if (config.init === "normal") data = f32(normal(r, s, std));
    else data = f32(kaimingUniform(r, s, s[1]));
    tensors.set(name, { shape: s, data });
  }
  return { config, shape, grid, tensors };
}

const dense = (t: Tensor): Dense => ({ shape: t.shape, data: t.data });

/** The tensors as the CPU algebra sees them (for merge, analysis and references). */
export function adapterState(set: AdapterSet): AdapterState {
  const { config, shape, grid, tensors } = set;
  const get = (k: string) => dense(tensors.get(k)!);
  const list: AdapterTensor[] = [];
  if (CONSTRUCTION_SPECS[config.construction].kind === "lora") {
    for (let p = 0; p < grid.length; p++) {
      for (let l = 0; l < shape.layers; l++) {
        const k = loraKeys(grid[p][l]);
        list[p * shape.layers + l] = { a: get(k.a), b: get(k.b) };
      }
    }
  } else {
    const modes = modeSizes(config.construction, shape).length;
    for (let t = 0; t < tensorCount(config.construction, shape); t++) {
      const factors = Array.from({ length: modes }, (_, i) => get(factorKey(t, i)));
      list.push(config.factorization === "cp" ? { factors } : { core: get(coreKey(t)), factors });
    }
  }
  return { construction: config.construction, shape, tensors: list, headLayout: config.headLayout, scaling: config.scaling };
}
