/**
 * Shape groups: the selected linear sites partitioned by their [in, out] shape. The stacking modes
 * of a construction (projections, depth, heads) form inside a group; each group has its own
 * tensors, ranks and file keys.
 *
 * Grouped-query attention (K/V with H_kv < H heads): by default ("mean") K and V join Q's group
 * as if they had Q's width H·dh; the adapter computes their full-width slice R and gives K/V the
 * mean over each query-head group, R_kv[:, j·dh + c] = (1/g) Σ_{i<g} R[:, (j·g + i)·dh + c] with
 * g = H / H_kv, since query head h reads K/V head ⌊h / g⌋. "separate" puts K/V in a group of
 * their own shape instead. LoRA never stacks, so it always groups by the sites' own shapes.
 *
 * The heads mode forms only where every site of the group has attention heads on its output
 * (Q, K, V) or on its input (the attention output projection, which then enters transposed:
 * ΔW = s · U_in R, so its head axis lines up with Q/K/V's); elsewhere an `att` construction
 * falls back to its counterpart without heads (att_qkv_depth → qkv_depth, att → lora).
 */
import { ConfigError, ShapeError } from "../errors.ts";
import { CONSTRUCTIONS, CONSTRUCTION_SPECS, type Construction, type ModelShape } from "./constructions.ts";
import { methodOf } from "./methods.ts";
import type { SliceView } from "./reference.ts";
import type { LinearSite } from "../nn/sites.ts";

/** How grouped-query attention's fewer K/V heads enter the stack: averaged into Q's heads ("mean") or stacked apart ("separate"). */
export type GqaMode = "mean" | "separate";
export const GQA_MODES: readonly GqaMode[] = ["mean", "separate"];

/** How one projection of a group reads the group's slices. */
export interface GroupMember extends SliceView {
  name: string;
}

/** One group of projection sites that share a stacked adapter tensor, laid out by layer and projection. */
export interface GroupPlan {
  /** The projections' names joined by "+", e.g. "query+key+value". */
  name: string;
  /** The construction this group runs: the requested one, or its fallback without heads. */
  construction: Construction;
  /** Set when `construction` is a fallback: why. */
  fallback?: string;
  /** dIn, dOut: the tensor's sides (transposed members read them swapped); heads 1 where the sites' heads do not line up. */
  shape: ModelShape;
  /** grid[p][l]: projection p's site in the group's l-th block. */
  grid: LinearSite[][];
  members: GroupMember[];
}

/** The construction without its heads mode, the rest stacked alike: att_qkv_depth → qkv_depth; att → lora. */
export function withoutHeads(c: Construction): Construction {
  const s = CONSTRUCTION_SPECS[c];
  if (!s.hasAtt) return c;
  return CONSTRUCTIONS.find((o) => {
    const t = CONSTRUCTION_SPECS[o];
    return !t.hasAtt && t.stacksProjections === s.stacksProjections && t.stacksDepth === s.stacksDepth;
  })!;
}

/** Query heads per K/V head, validated: the model's heads must divide. */
function gqaRatio(site: LinearSite): number {
  const h = site.heads;
  if (!h?.queryHeads || h.queryHeads === h.count) return 1;
  if (!Number.isInteger(h.count) || h.count < 1 || h.queryHeads % h.count !== 0) {
    throw new ConfigError(
      `${site.path}: ${h.queryHeads} query heads cannot share ${h.count} key/value heads (the query heads must be a multiple of the key/value heads); fix num_key_value_heads in the model's config`,
    );
  }
  return h.queryHeads / h.count;
}

/** The output width a site has inside its group: K/V under "mean" take Q's width. */
function groupOut(site: LinearSite, gqa: GqaMode, stacks: boolean): number {
  return stacks && gqa === "mean" && gqaRatio(site) > 1 ? site.heads!.queryHeads! * site.heads!.dim : site.outFeatures;
}

/** The heads a site shows the group: (count, dim) on its head side, or undefined. */
function headsSeen(site: LinearSite, gqa: GqaMode): { count: number; dim: number; side: "in" | "out" } | undefined {
  const h = site.heads;
  if (!h) return undefined;
  const count = gqa === "mean" && gqaRatio(site) > 1 ? h.queryHeads! : h.count;
  const width = h.side === "out" ? groupOut(site, gqa, true) : site.inFeatures;
  return Number.isInteger(h.dim) && count * h.dim === width ? { count, dim: h.dim, side: h.side } : undefined;
}

/** Partition `sites` (already selected) into shape groups for `construction`. */
export function planGroups(sites: LinearSite[], construction: Construction, gqa: GqaMode = "mean"): GroupPlan[] {
  if (!GQA_MODES.includes(gqa)) throw new ConfigError(`unknown GQA mode "${gqa}"; valid modes: ${GQA_MODES.join(", ")}`);
  const spec = CONSTRUCTION_SPECS[construction];
  const stacks = methodOf(construction).gqaMean;
  sites.forEach(gqaRatio);
  const byShape = new Map<string, LinearSite[]>();
  for (const s of sites) {
    const key = `${s.inFeatures}x${groupOut(s, gqa, stacks)}`;
    const group = byShape.get(key);
    if (group) group.push(s);
    else byShape.set(key, [s]);
  }
  const plans = [...byShape.values()].map((members) => planGroup(members, construction, gqa, stacks));
  if (spec.hasAtt && plans.every((p) => p.construction !== construction)) {
    throw new ConfigError(
      `construction "${construction}" splits updates by attention head, but none of the targets (${plans.map((p) => p.name).join(", ")}) has heads on its output or input; target query/key/value projections or use "${withoutHeads(construction)}"`,
    );
  }
  return plans;
}

function planGroup(sites: LinearSite[], construction: Construction, gqa: GqaMode, stacks: boolean): GroupPlan {
  const names = [...new Set(sites.map((s) => s.name))];
  const layers = [...new Set(sites.map((s) => s.layer))].sort((a, b) => a - b);
  const name = names.join("+");
  // sites by projection and block, so the grid costs linear time in the layer count
  const at = new Map<string, LinearSite[]>();
  for (const s of sites) {
    const k = `${s.name}\0${s.layer}`;
    const list = at.get(k);
    if (list) list.push(s);
    else at.set(k, [s]);
  }
  const grid = names.map((n) =>
    layers.map((l) => {
      const hits = at.get(`${n}\0${l}`) ?? [];
      if (hits.length !== 1) {
        throw new ShapeError(
          `shape group ${name}: projection "${n}" must have exactly one selected linear layer in block ${l}, found ${hits.length} (${hits.map((h) => h.path).join(", ") || "none"}); select the same projections in every block (target_modules, layers_to_transform)`,
        );
      }
      return hits[0];
    }),
  );
  // the heads mode: every site shows the same heads, and the tensor sides [dIn, dOut] they give
  // (swapped where the heads are on the input) agree, with the heads spanning dOut
  const seen = sites.map((s) => headsSeen(s, gqa));
  const h0 = seen[0];
  const sides = sites.map((s, i) => (seen[i]?.side === "in" ? [s.outFeatures, s.inFeatures] : [s.inFeatures, groupOut(s, gqa, stacks)]));
  const headsForm =
    h0 !== undefined &&
    seen.every((h) => h && h.count === h0.count && h.dim === h0.dim) &&
    sides.every(([i, o]) => i === sides[0][0] && o === sides[0][1] && o === h0.count * h0.dim);
  const spec = CONSTRUCTION_SPECS[construction];
  const effective = spec.hasAtt && !headsForm ? withoutHeads(construction) : construction;
  const att = CONSTRUCTION_SPECS[effective].hasAtt;
  const members: GroupMember[] = grid.map((row) => {
    const s = row[0];
    const ratio = gqaRatio(s);
    return {
      name: s.name,
      ...(stacks && gqa === "mean" && ratio > 1 ? { kv: { heads: s.heads!.count, dim: s.heads!.dim } } : {}),
      transposed: att && s.heads?.side === "in",
    };
  });
  return {
    name,
    construction: effective,
    ...(effective !== construction
      ? { fallback: `"${construction}" → "${effective}": ${name} ${h0 ? "has sites whose heads do not line up" : "has no attention heads"}` }
      : {}),
    shape: {
      dIn: att ? sides[0][0] : sites[0].inFeatures,
      dOut: att ? sides[0][1] : groupOut(sites[0], gqa, stacks),
      heads: headsForm ? h0!.count : 1,
      layers: layers.length,
      projections: names,
    },
    grid,
    members,
  };
}
