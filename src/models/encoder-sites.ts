/** The linear layers of a BERT-style encoder (ViT and RoBERTa share the layout but for one name). */
import { add } from "../ir/builder.ts";
import type { Value } from "../ir/graph.ts";
import type { ParamScope } from "../nn/params.ts";
import type { LinearSite, ProjectionHook } from "./types.ts";

export interface EncoderLayout {
  /** "vit.encoder.layer" or "roberta.encoder.layer". */
  layers: string;
  /** The self-attention module's name under `attention`: ViT "attention", RoBERTa "self". */
  selfAttention: string;
  numLayers: number;
  hidden: number;
  heads: number;
  intermediate: number;
}

/** Per layer, in forward order: query, key, value, attention output, intermediate, output. */
export function encoderLinearSites(e: EncoderLayout): LinearSite[] {
  const d = e.hidden;
  const heads = { count: e.heads, dim: d / e.heads };
  const sites: LinearSite[] = [];
  for (let l = 0; l < e.numLayers; l++) {
    const lp = `${e.layers}.${l}`;
    for (const name of ["query", "key", "value"]) {
      sites.push({ path: `${lp}.attention.${e.selfAttention}.${name}`, name, layer: l, inFeatures: d, outFeatures: d, heads: { side: "out", ...heads } });
    }
    sites.push({
      path: `${lp}.attention.output.dense`,
      name: "attention.output.dense",
      layer: l,
      inFeatures: d,
      outFeatures: d,
      heads: { side: "in", ...heads },
    });
    sites.push({ path: `${lp}.intermediate.dense`, name: "intermediate.dense", layer: l, inFeatures: d, outFeatures: e.intermediate });
    sites.push({ path: `${lp}.output.dense`, name: "output.dense", layer: l, inFeatures: e.intermediate, outFeatures: d });
  }
  return sites;
}

/**
 * The linear layers `sites` (bias when the checkpoint has one), all applied to `x`, plus the
 * adapter's updates.
 */
export function adaptedLinears(s: ParamScope, x: Value, sites: LinearSite[], hook: ProjectionHook | undefined): Value[] {
  const ys = sites.map((site) => s.linear(x, site.path));
  const deltas = hook?.(x, sites) ?? [];
  return ys.map((y, i) => (deltas[i] ? add(y, deltas[i]) : y));
}
