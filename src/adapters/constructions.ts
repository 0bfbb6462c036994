/**
 * The eight adapter constructions of TensLoRA (arXiv 2509.19391), described by data: whether
 * the output is split per head (`att`), whether the projections q/k/v are stacked into a mode
 * (`qkv`), whether the layers are (`depth`). Everything else — mode names and sizes, how many
 * tensors there are, which tensor and which index a projection (p, l) reads — derives from
 * those three flags, so a new grouping is a new row, not a new class.
 *
 * Mode order (as in the official code): `in, out` or `in, dh, heads`, then `qkv`, then `depth`.
 */
import { ConfigError } from "../errors.ts";
import type { TensorModes } from "./factorizations/types.ts";

/** The seven TensLoRA stackings: heads, Q/K/V, depth and their combinations. */
export const TENSLORA_CONSTRUCTIONS = ["att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth"] as const;

/** Every adapter construction: LoRA (one matrix pair per site, no stacking) and the TensLoRA ones. */
export const CONSTRUCTIONS = ["lora", ...TENSLORA_CONSTRUCTIONS] as const;

/** The name of an adapter construction (one of `CONSTRUCTIONS`). */
export type Construction = (typeof CONSTRUCTIONS)[number];

export interface ConstructionSpec {
  name: Construction;
  /** The output is split into (dh, heads) modes. */
  hasAtt: boolean;
  /** The projections (q, k, v, …) are a mode of one tensor. */
  stacksProjections: boolean;
  /** The layers are a mode of one tensor. */
  stacksDepth: boolean;
}

function spec(name: Construction): ConstructionSpec {
  const parts = name.split("_");
  return {
    name,
    hasAtt: parts.includes("att"),
    stacksProjections: parts.includes("qkv"),
    stacksDepth: parts.includes("depth"),
  };
}

export const CONSTRUCTION_SPECS: Readonly<Record<Construction, ConstructionSpec>> = Object.fromEntries(CONSTRUCTIONS.map((c) => [c, spec(c)])) as Record<
  Construction,
  ConstructionSpec
>;

export type ModeName = "in" | "out" | "dh" | "heads" | "qkv" | "depth";

/**
 * The linear layers an adapter family covers: `projections.length` same-shaped [dOut, dIn]
 * layers in each of `layers` blocks. The `qkv` mode has size `projections.length`, so adding
 * an output projection (or any list of same-shaped linears) just enlarges that mode.
 */
export interface ModelShape {
  dIn: number;
  dOut: number;
  heads: number;
  layers: number;
  projections: string[];
}

export const DEFAULT_PROJECTIONS: readonly string[] = ["query", "key", "value"];

/** A validated ModelShape; `projections` defaults to query, key, value. */
export function modelShape(s: Omit<ModelShape, "projections"> & { projections?: readonly string[] }): ModelShape {
  const shape: ModelShape = { ...s, projections: [...(s.projections ?? DEFAULT_PROJECTIONS)] };
  validateModelShape(shape);
  return shape;
}

/** Positive integer sizes, at least one uniquely named projection. */
export function validateModelShape(shape: ModelShape): void {
  for (const key of ["dIn", "dOut", "heads", "layers"] as const) {
    const v = shape[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new ConfigError(`model shape: ${key} must be an integer ≥ 1, got ${v}`);
    }
  }
  if (shape.projections.length === 0) {
    throw new ConfigError("model shape: projections must name at least one linear layer per block (e.g. query, key, value), got []");
  }
  if (new Set(shape.projections).size !== shape.projections.length) {
    throw new ConfigError(`model shape: projection names must be unique, got [${shape.projections.join(", ")}]`);
  }
}

/** The construction named `name`, or a ConfigError listing the valid names. */
export function parseConstruction(name: string): Construction {
  if ((CONSTRUCTIONS as readonly string[]).includes(name)) return name as Construction;
  throw new ConfigError(`unknown construction "${name}"; valid constructions: ${CONSTRUCTIONS.join(", ")}`);
}

function specOf(c: Construction): ConstructionSpec {
  return CONSTRUCTION_SPECS[c];
}

/** Mode names in tensor order; `lora` reports its matrix as (in, out). */
export function modeNames(c: Construction): ModeName[] {
  const s = specOf(c);
  const names: ModeName[] = s.hasAtt ? ["in", "dh", "heads"] : ["in", "out"];
  if (s.stacksProjections) names.push("qkv");
  if (s.stacksDepth) names.push("depth");
  return names;
}

/** Position of a mode in the construction's tensor, or −1 when it has no such mode. */
export function modeIndex(c: Construction, name: ModeName): number {
  return modeNames(c).indexOf(name);
}

function checkHeads(c: Construction, shape: ModelShape): void {
  if (specOf(c).hasAtt && shape.dOut % shape.heads !== 0) {
    throw new ConfigError(
      `construction "${c}" splits the output into heads: heads must divide dOut, got dOut = ${shape.dOut}, heads = ${shape.heads} (use a construction without "att" or fix the head count)`,
    );
  }
}

/** Size of each mode, in `modeNames` order. */
export function modeSizes(c: Construction, shape: ModelShape): number[] {
  validateModelShape(shape);
  checkHeads(c, shape);
  const size: Record<ModeName, number> = {
    in: shape.dIn,
    out: shape.dOut,
    dh: shape.dOut / shape.heads,
    heads: shape.heads,
    qkv: shape.projections.length,
    depth: shape.layers,
  };
  return modeNames(c).map((m) => size[m]);
}

/** Number of tensors (or LoRA pairs): one per projection unless stacked, one per layer unless stacked. */
export function tensorCount(c: Construction, shape: ModelShape): number {
  const s = specOf(c);
  validateModelShape(shape);
  return (s.stacksProjections ? 1 : shape.projections.length) * (s.stacksDepth ? 1 : shape.layers);
}

/** Where projection p of layer l reads its update. */
export interface SliceIndex {
  /** Tensor number: att/lora p·L + l; qkv, att_qkv l; depth, att_depth p; qkv_depth, att_qkv_depth 0. */
  tensor: number;
  /** Fixed values of the index modes (present only when the mode exists). */
  fixed: { qkv?: number; depth?: number };
}

/** The tensor and index-mode values that projection `p` (0 = query, …) of layer `l` uses. */
export function tensorIndex(c: Construction, shape: ModelShape, p: number, l: number): SliceIndex {
  const s = specOf(c);
  validateModelShape(shape);
  const P = shape.projections.length;
  const L = shape.layers;
  if (!Number.isInteger(p) || p < 0 || p >= P) {
    throw new ConfigError(`projection index must be an integer in [0, ${P - 1}] (${shape.projections.join(", ")}), got ${p}`);
  }
  if (!Number.isInteger(l) || l < 0 || l >= L) {
    throw new ConfigError(`layer index must be an integer in [0, ${L - 1}], got ${l}`);
  }
  const tensor = (s.stacksProjections ? 0 : p) * (s.stacksDepth ? 1 : L) + (s.stacksDepth ? 0 : l);
  const fixed: SliceIndex["fixed"] = {};
  if (s.stacksProjections) fixed.qkv = p;
  if (s.stacksDepth) fixed.depth = l;
  return { tensor, fixed };
}

/** Every (p, l) that reads tensor `t`, p-major. */
export function slicesOfTensor(c: Construction, shape: ModelShape, t: number): { p: number; l: number }[] {
  const out: { p: number; l: number }[] = [];
  for (let p = 0; p < shape.projections.length; p++) {
    for (let l = 0; l < shape.layers; l++) if (tensorIndex(c, shape, p, l).tensor === t) out.push({ p, l });
  }
  return out;
}

/** A tensor's modes as its factorisation sees them (head layout: see reference.ts). */
export function tensorModes(c: Construction, shape: ModelShape, headMajor = true): TensorModes {
  return { names: modeNames(c), sizes: modeSizes(c, shape), att: specOf(c).hasAtt, headMajor };
}
