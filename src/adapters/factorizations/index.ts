/** The factorisations an adapter tensor can use; a new one is one file and one line here. */
import { ConfigError } from "../../errors.ts";
import { cp } from "./cp.ts";
import { partialTucker } from "./partial-tucker.ts";
import { tt } from "./tt.ts";
import { tucker } from "./tucker.ts";
import type { FactorizationDef } from "./types.ts";

/** The tensor factorisations an adapter can use, by name: Tucker, CP, tensor-train and partial Tucker. */
export const FACTORIZATIONS = { tucker, cp, tt, partial_tucker: partialTucker } as const satisfies Record<string, FactorizationDef>;

/** The name of a tensor factorisation (a key of `FACTORIZATIONS`). */
export type Factorization = keyof typeof FACTORIZATIONS;

/** The factorisation an adapter uses unless told otherwise (the paper's). */
export const DEFAULT_FACTORIZATION: Factorization = "tucker";

/** Check a factorisation name from a user or a file; throws a ConfigError listing the valid ones. */
export function parseFactorization(name: unknown): Factorization {
  if (typeof name === "string" && name in FACTORIZATIONS) return name as Factorization;
  throw new ConfigError(`unknown factorization ${JSON.stringify(name)}; valid factorizations: ${Object.keys(FACTORIZATIONS).join(", ")}`);
}
