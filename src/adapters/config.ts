/**
 * An adapter family's configuration, typed and validated once. Defaults follow the paper's code
 * (Tucker, orthogonal factors, zero core, scaling 1, q/k/v of every layer) and PEFT for LoRA
 * (kaiming-uniform A, zero B, scaling alpha/r or alpha/√r with rsLoRA).
 */
import { ConfigError } from "../errors.ts";
import { CONSTRUCTIONS, CONSTRUCTION_SPECS, type Construction, type ModelShape, normalizeRanks, parseConstruction } from "./constructions.ts";
import type { Factorization } from "./params.ts";
import type { HeadLayout } from "./reference.ts";

export type InitMethod = "orthogonal" | "normal" | "kaiming_uniform";

export interface AdapterConfig {
  construction: Construction;
  /** Per-mode ranks in `modeNames` order; LoRA: [r]; CP: [R]. */
  ranks: number[];
  factorization: Factorization;
  /** s: every update is multiplied by it. LoRA: alpha/r (alpha/√r with rsLoRA). */
  scaling: number;
  /** LoRA only: PEFT's lora_alpha and use_rslora, kept to write PEFT's config back. */
  loraAlpha?: number;
  useRslora?: boolean;
  /** Which column of an (in, dh, heads) slice a head owns; see reference.ts. */
  headLayout: HeadLayout;
  /** Adapted linear layers, in the order of the `qkv` mode. */
  targetModules: string[];
  /** Factor initialisation (the core, or CP's first factor, starts at zero). */
  init: InitMethod;
}

export interface AdapterOptions {
  construction: string;
  ranks: number | number[];
  factorization?: Factorization;
  scaling?: number;
  loraAlpha?: number;
  useRslora?: boolean;
  headLayout?: HeadLayout;
  targetModules?: string[];
  init?: InitMethod;
}

const INITS: InitMethod[] = ["orthogonal", "normal", "kaiming_uniform"];

/** Validate options against a model shape; returns the config and legal-but-wasteful warnings. */
export function resolveAdapterConfig(o: AdapterOptions, shape: ModelShape): { config: AdapterConfig; warnings: string[] } {
  const construction = parseConstruction(o.construction);
  const factorization = o.factorization ?? "tucker";
  if (factorization !== "tucker" && factorization !== "cp") {
    throw new ConfigError(`unknown factorization "${factorization}"; valid factorizations: tucker, cp`);
  }
  const headLayout = o.headLayout ?? "head_major";
  if (headLayout !== "head_major" && headLayout !== "interleaved") {
    throw new ConfigError(`unknown head layout "${headLayout}"; valid layouts: head_major, interleaved`);
  }
  const init = o.init ?? "orthogonal";
  if (!INITS.includes(init)) throw new ConfigError(`unknown init "${init}"; valid inits: ${INITS.join(", ")}`);
  const lora = CONSTRUCTION_SPECS[construction].kind === "lora";
  let ranks: number[];
  let warnings: string[] = [];
  if (!lora && factorization === "cp") {
    const list = typeof o.ranks === "number" ? [o.ranks] : o.ranks;
    if (list.length !== 1 || !Number.isInteger(list[0]) || list[0] < 1) {
      throw new ConfigError(`CP takes one rank R (an integer ≥ 1), got [${list.join(", ")}]`);
    }
    ranks = [list[0]];
  } else {
    ({ ranks, warnings } = normalizeRanks(construction, shape, o.ranks));
  }
  let scaling = o.scaling ?? 1;
  if (lora && o.loraAlpha !== undefined) scaling = o.useRslora ? o.loraAlpha / Math.sqrt(ranks[0]) : o.loraAlpha / ranks[0];
  if (!Number.isFinite(scaling)) throw new ConfigError(`scaling must be a finite number, got ${scaling}`);
  return {
    config: {
      construction,
      ranks,
      factorization: lora ? "tucker" : factorization,
      scaling,
      loraAlpha: lora ? (o.loraAlpha ?? scaling * ranks[0]) : undefined,
      useRslora: lora ? (o.useRslora ?? false) : undefined,
      headLayout,
      targetModules: [...(o.targetModules ?? shape.projections)],
      init,
    },
    warnings,
  };
}

export { CONSTRUCTIONS };
