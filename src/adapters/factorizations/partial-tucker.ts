/**
 * Partial Tucker (TensorLy's `partial_tucker`): the matrix modes (in, out; or in, dh, heads) get a
 * factor and a rank each, while the index modes (qkv, depth) keep their full size in the core and
 * have no factor. Slice (p, l) is U_in · G[…, p, l] · U_outᵀ with a free r_in × r_out core slice
 * per projection and layer, shared input and output factors: LoTR (Bershatsky et al. 2024) is
 * `depth` under it. The core is zero at initialisation.
 */
import { ConfigError } from "../../errors.ts";
import { tuckerNormalStd } from "../../tensor/init.ts";
import { multiModeDot } from "../../tensor/dense.ts";
import { modeRankWarnings, outputSideHeads, tucker } from "./tucker.ts";
import { type FactorizationDef, type TensorModes, indexModes } from "./types.ts";

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** The factorised modes come first: in, then out or (dh, heads). */
const matrixModes = (modes: TensorModes) => modes.sizes.length - indexModes(modes).length;
/** The number of core slices, Π of the index modes' sizes. */
const indexSize = (modes: TensorModes) => prod(indexModes(modes).map((i) => modes.sizes[i]));

const countOf = (modes: TensorModes, ranks: readonly number[]) => ranks.reduce((a, r, i) => a + modes.sizes[i] * r, 0) + prod(ranks) * indexSize(modes);

export const partialTucker: FactorizationDef = {
  name: "partial_tucker",
  rankNames: (modes) => modes.names.slice(0, matrixModes(modes)),
  /** As Tucker's, over the factorised modes; the index modes count in the bound at their full size. */
  ranks(modes, given, where) {
    const names = partialTucker.rankNames(modes);
    const list = typeof given === "number" ? names.map(() => given) : [...given];
    if (list.length !== names.length) {
      throw new ConfigError(
        `${where} has ${names.length} factorised modes under partial Tucker (${names.join(", ")}; ${modes.names.slice(names.length).join(", ") || "no index mode"} kept whole): give one rank or ${names.length} ranks, got ${list.length} [${list.join(", ")}]`,
      );
    }
    return { ranks: list, warnings: modeRankWarnings(names, modes.sizes, list, where, indexSize(modes)) };
  },
  /** The factorised modes come first, so Tucker's bound (every mode size) reads the same ranks. */
  checkBounds: (modes, ranks, where) => tucker.checkBounds(modes, ranks, where),
  params: (modes, ranks) => [
    { key: "core", shape: [...ranks, ...indexModes(modes).map((i) => modes.sizes[i])], modes: [...ranks.map(() => -1), ...indexModes(modes)], zero: true },
    ...ranks.map((r, i) => ({ key: `factors.${i}`, shape: [modes.sizes[i], r], modes: [i, -1], zero: false })),
  ],
  inputKey: "factors.0",
  inputRank: (ranks) => ranks[0],
  /** The core's index axes are already the S = P·L slices (p-major): no index factor to contract. */
  slices(ops, get, modes) {
    const core = get("core"); // [T, a, b, (c), (P), (L)]
    const [T, ...dims] = ops.shape(core);
    const m = matrixModes(modes);
    const rk = dims.slice(0, m);
    const S = indexSize(modes);
    const f = (i: number) => get(`factors.${i}`); // [T, I_i, r_i]
    if (modes.att) return outputSideHeads(ops, ops.reshape(core, [T, prod(rk), S]), T, rk, S, f(1), f(2), modes.headMajor);
    const [a, rb] = rk;
    const c = ops.transpose(ops.reshape(core, [T, a, rb, S]), [0, 1, 3, 2]); // [T, a, S, b]
    return ops.reshape(ops.matmul(ops.reshape(c, [T, a * S, rb]), f(1), { transB: true }), [T, a, S, modes.sizes[1]]);
  },
  full: (get, modes) =>
    multiModeDot(
      get("core"),
      modes.sizes.map((_, i) => (i < matrixModes(modes) ? get(`factors.${i}`) : undefined)),
    ),
  /** Equal ranks r on the factorised modes (each capped at its size with `capAtModeSize`), the largest r whose count fits. */
  forBudget(modes, budget, { capAtModeSize }) {
    const m = matrixModes(modes);
    const at = (r: number) => modes.sizes.slice(0, m).map((n) => (capAtModeSize ? Math.min(r, n) : r));
    const top = capAtModeSize ? Math.max(...modes.sizes.slice(0, m)) : budget;
    let r = 1;
    while (r < top && countOf(modes, at(r + 1)) <= budget) r++;
    return at(r);
  },
  /** The out rank is r_dh·r_heads, capped at dOut, as for Tucker. */
  withoutHeads: ([rIn, rDh, rHeads, ...rest], dOut) => [rIn, Math.min(rDh * rHeads, dOut), ...rest],
  /** The reconstruction's variance over the factorised modes, as for Tucker (index modes add no factor). */
  initStd: (ranks) => tuckerNormalStd(ranks),
};
