/**
 * An adapter method as the rest of the library sees it. LoRA and the seven TensLoRA constructions
 * are entries of one registry (methods.ts), each carrying what differs between them: ranks and
 * parameter counts, the parameters it creates and how they are saved, its update matrices on the
 * CPU, how a projection adds its update in the graph, and how it exports to PEFT LoRA. Code
 * outside the entries asks the entry instead of testing the method's name.
 */
import type { Value } from "../ir/graph.ts";
import type { LinearSite } from "../nn/sites.ts";
import type { Dense } from "../tensor/dense.ts";
import type { AdapterConfig, AdapterGroup, InitMethod } from "./config.ts";
import type { ModelShape } from "./constructions.ts";
import type { Factorization } from "./factorizations/index.ts";
import type { AdapterTensor, HeadLayout, SliceFactors } from "./reference.ts";
import type { SiteGraphOptions } from "./tensor-graph.ts";

/** Per-mode ranks plus legal-but-wasteful findings. */
export interface NormalizedRanks {
  ranks: number[];
  warnings: string[];
}

/** One saved parameter of a group: its file key, shape and initialisation. */
export interface MethodParam {
  name: string;
  shape: number[];
  /** Starts at zero, so the update starts at zero. */
  zero: boolean;
  /** Drawn this way whatever the config's `init` says. */
  init?: InitMethod;
  /** The standard deviation of a "normal" draw. */
  std: number;
}

/** How one adapted projection adds its update to y = x Wᵀ. */
export interface SiteUpdate {
  /**
   * The factor x is multiplied by first, shared by every site with the same key; `transB`: it is
   * [r, in] (else [in, r]). Absent when the site reads x itself.
   */
  input?: { key: string; value: () => Value; transB: boolean };
  /** The update [..., out] from x and x times the input factor. */
  output(x: Value, xu: Value | undefined): Value;
}

/** What differs between adapter methods; the rest of the library asks an entry of `ADAPTER_METHODS` (methods.ts). */
export interface AdapterMethod {
  /** Its tensors take a factorisation (Tucker, CP, TT, partial Tucker), so arms vary it. */
  factorised: boolean;
  /** Its ranks can be read from a spectrum (`--ranks auto`, energy ranks). */
  spectrumRanks: boolean;
  /** Its scaling is PEFT's lora_alpha / r (or / √r with rsLoRA), and the config keeps alpha. */
  peftAlpha: boolean;
  /** Under GQA "mean", K/V read Q's width and average their query-head groups (they share Q's stack). */
  gqaMean: boolean;
  /** The factorisation a config of this method records, from the one asked for. */
  factorization(asked: Factorization | undefined): Factorization;
  /** The names of its ranks, in order (they do not depend on mode sizes). */
  rankNames(f: Factorization): string[];
  /** Check a list of ranks asked for before the groups exist (its length). */
  checkRankList(ranks: readonly number[], f: Factorization): void;
  /** The ranks of one tensor from one rank or a list (see normalizeRanks in methods.ts). */
  normalizeRanks(shape: ModelShape, ranks: number | readonly number[], f: Factorization): NormalizedRanks;
  /** Throw for ranks no adapter should be built with. */
  checkRankBounds(shape: ModelShape, ranks: readonly number[], f: Factorization): void;
  /** Trainable parameters of one tensor (or LoRA pair) at normalised ranks. */
  tensorParams(shape: ModelShape, ranks: readonly number[], f: Factorization): number;
  /** The ranks of one tensor whose count is the largest not above `perTensor` (see ranksForBudget). */
  forBudget(shape: ModelShape, perTensor: number, opts: { capAtModeSize: boolean; slack: number }, f: Factorization): number[];
  /** A group that falls back to this method (its heads mode dropped): its ranks from the ranks asked for. */
  ranksWithoutHeads(ranks: number[], dOut: number, f: Factorization): number[];
  /** Every saved parameter of a group, in creation order. */
  params(config: AdapterConfig, group: AdapterGroup): MethodParam[];
  /** A group's tensors for the CPU algebra, indexed by `tensorIndex(...).tensor`. */
  tensors(config: AdapterConfig, group: AdapterGroup, get: (name: string) => Dense): AdapterTensor[];
  /** Throw a ShapeError unless `t` is a tensor of this method for `shape`. */
  checkTensor(shape: ModelShape, t: AdapterTensor): void;
  /** M [dIn, dOut] of projection (p, l) by folding the full tensor (test reference). */
  folded(shape: ModelShape, t: AdapterTensor, layout: HeadLayout, p: number, l: number): Dense;
  /** U_in and R[p,l] with M = U_in · R[p,l], without folding. */
  slice(shape: ModelShape, t: AdapterTensor, layout: HeadLayout, p: number, l: number): SliceFactors;
  /** How each site of a group adds its update in the graph; values are built lazily and shared. */
  siteUpdates(
    config: AdapterConfig,
    group: AdapterGroup,
    get: (name: string) => Value,
    options?: SiteGraphOptions,
  ): (p: number, l: number, site: LinearSite) => SiteUpdate;
  /** The PEFT `adapter_config.json` fields of an adapter of this method, before the fields every adapter has. */
  configJson(config: AdapterConfig, groups: AdapterGroup[], model: { layers: number; hidden: number; heads: number }): Record<string, unknown>;
}
