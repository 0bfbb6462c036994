/**
 * What a model tells an adapter, and what the adapter gives back. The model lists its linear
 * layers as sites; the adapter returns a hook the model calls at every group of sites that read
 * one input. Neither side knows the other's internals: adapters never import a model family.
 */
import type { Value } from "../ir/graph.ts";

/**
 * The attention-head structure of one side of a linear layer: the output of a query, key or
 * value projection, or the input of the attention output projection.
 */
export interface SiteHeads {
  side: "out" | "in";
  /** Heads on that side (for K/V under grouped-query attention: H_kv). */
  count: number;
  /** Size of one head (dh). */
  dim: number;
  /**
   * K/V of grouped-query attention: the number H of query heads, a multiple of `count`. Query
   * head h reads key/value head ⌊h / (H / count)⌋.
   */
  queryHeads?: number;
}

/** One linear layer an adapter can target. */
export interface LinearSite {
  /** Full module path, e.g. "vit.encoder.layer.3.attention.attention.query". */
  path: string;
  /**
   * The projection's name, the same in every block ("query", "k_proj", "intermediate.dense"):
   * sites of one name across blocks are one projection of the stacking modes.
   */
  name: string;
  layer: number;
  inFeatures: number;
  outFeatures: number;
  /** Present where a side of the layer is split into attention heads. */
  heads?: SiteHeads;
}

/**
 * The adapter's updates for linear layers that all read `x`: one delta per site, undefined where
 * a site is not adapted. Sites sharing an input come in one call so the adapter can read x once.
 */
export type ProjectionHook = (x: Value, sites: LinearSite[]) => (Value | undefined)[];
