/**
 * Gradient checks of an adapter's hook against the independent fold of test/helpers.ts. The probe
 * loss L = Σ_sites Σ_{t,o} (x ΔWᵀ)[t, o] · C_site[t, o] is linear in each ΔW: the graph
 * differentiates it through the hook (ONNX Runtime, float32), the host evaluates it in float64
 * from `naiveDeltaMap` for central differences.
 */
import assert from "node:assert/strict";
import type { AdapterSet } from "../src/adapters/adapter-set.ts";
import { adapterHook } from "../src/adapters/inject.ts";
import type { SiteGraphOptions } from "../src/adapters/tensor-graph.ts";
import type { LinearSite } from "../src/nn/sites.ts";
import { grad } from "../src/autodiff/vjp.ts";
import * as b from "../src/ir/builder.ts";
import { Graph, type Value } from "../src/ir/graph.ts";
import type { WeightMap } from "../src/nn/params.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import type { Rng } from "../src/tensor/random.ts";
import { naiveDeltaMap } from "./helpers.ts";

/** Inputs x [tokens, width] by width (a site reads the one of its inFeatures). */
export type ProbeInputs = Map<number, Float32Array>;

export interface ProbeRun {
  /** `grad.<tensor>` for every adapter tensor, plus what `onSite` added. */
  out: Record<string, HostTensor>;
  /** C_site by site path. */
  probes: Map<string, ArrayLike<number>>;
}

/**
 * Compile and run the probe loss's gradients for `set` (its tensors are graph inputs); `onSite`
 * may add outputs that use a site's input and update; `options` go to the adapter's hook.
 */
export async function runProbeGraph(
  set: AdapterSet,
  xs: ProbeInputs,
  tokens: number,
  rng: Rng,
  onSite?: (g: Graph, x: Value, site: LinearSite, update: Value) => void,
  options?: SiteGraphOptions,
): Promise<ProbeRun> {
  const g = new Graph();
  const xv = new Map([...xs].map(([w, data]) => [w, g.initializer(`x${w}`, data, [tokens, w])]));
  const params = new Map<string, Value>();
  const get = (name: string) => {
    if (!params.has(name)) params.set(name, g.input(name, "float32", [...set.tensors.get(name)!.shape]));
    return params.get(name)!;
  };
  const hook = adapterHook(set, get, options);
  const probes = new Map<string, ArrayLike<number>>();
  let loss: Value | undefined;
  for (const site of set.groups.flatMap((gr) => gr.grid.flat())) {
    const x = xv.get(site.inFeatures)!;
    const update = hook(x, [site])[0]!;
    onSite?.(g, x, site, update);
    const probe = rng.normalArray(tokens * site.outFeatures);
    probes.set(site.path, probe);
    const term = b.reduceSum(b.mul(update, g.initializer(`C:${site.path}`, probe, [tokens, site.outFeatures])), [0, 1]);
    loss = loss ? b.add(loss, term) : term;
  }
  const names = [...params.keys()];
  grad(
    loss!,
    names.map((n) => params.get(n)!),
  ).forEach((gv, i) => g.output(`grad.${names[i]}`, gv));
  const compiled = await compile(g);
  try {
    const feeds = Object.fromEntries(names.map((n) => [n, { dtype: "float32" as const, shape: set.tensors.get(n)!.shape, data: set.tensors.get(n)!.data }]));
    return { out: await compiled.run(feeds), probes };
  } finally {
    compiled.dispose();
  }
}

/** The probe loss in float64 with ΔW from the independent fold of `tensors`. */
function hostProbeLoss(set: AdapterSet, tensors: WeightMap, xs: ProbeInputs, tokens: number, probes: Map<string, ArrayLike<number>>): number {
  const sites = new Map(set.groups.flatMap((gr) => gr.grid.flat()).map((s) => [`${s.path}.weight`, s]));
  let sum = 0;
  for (const [key, dw] of naiveDeltaMap({ ...set, tensors })) {
    const s = sites.get(key)!;
    const x = xs.get(s.inFeatures)!;
    const probe = probes.get(s.path)!;
    for (let t = 0; t < tokens; t++) {
      for (let o = 0; o < s.outFeatures; o++) {
        let v = 0;
        for (let i = 0; i < s.inFeatures; i++) v += x[t * s.inFeatures + i] * dw[o * s.inFeatures + i];
        sum += v * probe[t * s.outFeatures + o];
      }
    }
  }
  return sum;
}

/**
 * Every tensor's gradient along one random direction against the central difference of the host
 * loss: |⟨g, v⟩ − fd| ≤ 1e-4 ‖g‖ + 1e-6. Returns the worst |⟨g, v⟩ − fd| / ‖g‖.
 */
export function checkProbeGradients(set: AdapterSet, run: ProbeRun, xs: ProbeInputs, tokens: number, rng: Rng, what: string): number {
  let worst = 0;
  for (const [k, t] of set.tensors) {
    const dir = Float64Array.from(rng.normalArray(t.data.length));
    const norm = Math.sqrt(dir.reduce((a, v) => a + v * v, 0));
    const at = (h: number): number => {
      const data = Float64Array.from(t.data, (v, i) => v + (h * dir[i]) / norm);
      return hostProbeLoss(set, new Map([...set.tensors, [k, { shape: t.shape, data: data as unknown as Float32Array }]]), xs, tokens, run.probes);
    };
    const h = 1e-3;
    const fd = (at(h) - at(-h)) / (2 * h);
    const gr = run.out[`grad.${k}`].data as Float32Array;
    let an = 0;
    let scale = 0;
    for (let i = 0; i < gr.length; i++) {
      an += (gr[i] * dir[i]) / norm;
      scale += gr[i] * gr[i];
    }
    scale = Math.sqrt(scale);
    assert.ok(scale > 0, `${what}: ${k} has a zero gradient, the check would be empty`);
    assert.ok(Math.abs(an - fd) <= 1e-4 * scale + 1e-6, `${what}: ${k} gradient ${an} vs central difference ${fd} (‖grad‖ ${scale})`);
    worst = Math.max(worst, Math.abs(an - fd) / scale);
  }
  return worst;
}
