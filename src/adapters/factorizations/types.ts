/**
 * A factorisation of an adapter tensor: how its ranks are given, its parameters (names, shapes,
 * which start at zero), their count, the slices R[p,l] every adapted projection reads, the full
 * tensor (tests only), and the ranks a parameter budget buys. Slices are written once against
 * `SliceOps`, so the training graph and the host (merge, export, analysis) share one definition.
 */
import type { Dense } from "../../tensor/dense.ts";
import type { SliceOps } from "./ops.ts";

/** The modes of one tensor, as the slices need them. */
export interface TensorModes {
  /** Mode names in tensor order: in, then out or (dh, heads), then qkv and/or depth. */
  names: readonly string[];
  sizes: readonly number[];
  /** The output side is (dh, heads). */
  att: boolean;
  /** att: head h owns columns h·dh … h·dh+dh−1 (else column j·H + h, the official unfold). */
  headMajor: boolean;
}

export interface ParamSpec {
  /** The parameter's name inside its tensor: "core", "factors.<i>", "cores.<i>". */
  key: string;
  shape: number[];
  /**
   * The tensor mode each axis runs over (the axis has that mode's size), −1 for a rank axis: the
   * restriction to fixed index-mode values (one slice R[p,l]) slices the parameter on those axes.
   */
  modes: number[];
  /** Zero at initialisation (so the update starts at zero); exactly one parameter per tensor. */
  zero: boolean;
}

export interface RankResult {
  ranks: number[];
  warnings: string[];
}

export interface FactorizationDef {
  name: string;
  /** Names of the rank entries, e.g. ["in", "out", "qkv"] (Tucker), ["R"] (CP), ["in-out", "out-qkv"] (TT). */
  rankNames(modes: TensorModes): string[];
  /** Ranks from one number (the same everywhere) or a list; errors name the mode; wasted ranks warn. */
  ranks(modes: TensorModes, given: number | readonly number[], where: string): RankResult;
  /** A rank that can add nothing at any size (and may not fit in memory) is an error naming the size. */
  checkBounds(modes: TensorModes, ranks: readonly number[], where: string): void;
  params(modes: TensorModes, ranks: readonly number[]): ParamSpec[];
  /** The input factor U_in: its parameter (reshaped to [dIn, r_in]) and r_in. */
  inputKey: string;
  inputRank(ranks: readonly number[]): number;
  /**
   * All R[p,l] of T stacked tensors as [T, r_in, S, dOut]: S = P·L slices, p-major (1 without index
   * modes). `get(key)` returns that parameter of every tensor stacked on a leading axis.
   */
  slices<V>(ops: SliceOps<V>, get: (key: string) => V, modes: TensorModes): V;
  /** The full tensor (tests and references only). */
  full(get: (key: string) => Dense, modes: TensorModes): Dense;
  /** The ranks whose count is the largest not above `budget` (one tensor), by the documented rule. */
  forBudget(modes: TensorModes, budget: number, opts: { capAtModeSize: boolean; slack: number }): number[];
  /**
   * The ranks given for an (in, dh, heads, …) construction, mapped onto its counterpart without
   * heads, (in, out, …) with out = dh·heads = `dOut`, for a shape group that has no heads.
   */
  withoutHeads(ranks: readonly number[], dOut: number): number[];
  /** The standard deviation of `--init normal` draws for these ranks (non-zero parameters). */
  initStd(ranks: readonly number[]): number;
}

/** Positions of the index modes (qkv, depth) in a tensor's modes. */
export function indexModes(modes: TensorModes): number[] {
  const first = modes.att ? 3 : 2;
  return modes.sizes.map((_, i) => i).filter((i) => i >= first);
}

export const count = (def: FactorizationDef, modes: TensorModes, ranks: readonly number[]): number =>
  def.params(modes, ranks).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
