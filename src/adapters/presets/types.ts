/**
 * A preset: a published tensor method as a named adapter configuration. It fixes the
 * construction, the factorisation and the targets; the user still gives the rank (or a budget).
 */
import type { AdapterOptions } from "../config.ts";
import type { GroupPlan } from "../groups.ts";
import type { LinearSite } from "../../nn/sites.ts";

export interface AdapterPreset {
  name: string;
  /** The paper, as cited in docs/adapters.md. */
  source: string;
  options(sites: LinearSite[]): Pick<AdapterOptions, "construction" | "factorization" | "targetModules">;
  /** A group's ranks from one rank r, where the method fixes some of them. */
  ranks?(r: number, group: GroupPlan): number[];
}

/** The names of the sites with attention heads: the query/key/value projections and the attention output. */
export const attentionSites = (sites: LinearSite[]): string[] => [...new Set(sites.filter((s) => s.heads).map((s) => s.name))];
