/**
 * CP (CANDECOMP/PARAFAC): T = Σ_a U₁[:, a] ∘ U₂[:, a] ∘ … ∘ U_N[:, a], one rank R shared by
 * every mode, factors U_n [I_n, R], the first zero at initialisation (a Tucker tensor with a
 * superdiagonal core).
 */
import { ConfigError } from "../../errors.ts";
import { cpToTensor } from "../../tensor/tucker.ts";
import { type FactorizationDef, indexModes } from "./types.ts";

export const cp: FactorizationDef = {
  name: "cp",
  rankNames: () => ["R"],
  ranks(_modes, given, where) {
    const list = typeof given === "number" ? [given] : [...given];
    if (list.length === 0 || list.some((r) => r !== list[0])) {
      throw new ConfigError(`CP takes one rank R shared by every mode (${where}), got ${list.length} ranks [${list.join(", ")}]`);
    }
    if (!Number.isInteger(list[0]) || list[0] < 1) throw new ConfigError(`${where}: the CP rank must be an integer ≥ 1, got ${list[0]}`);
    return { ranks: [list[0]], warnings: [] };
  },
  /** No tensor has a CP rank above Π I_n / max I_n. */
  checkBounds({ names, sizes }, [R], where) {
    const bound = sizes.reduce((a, b) => a * b, 1) / Math.max(...sizes);
    if (R > bound) {
      throw new ConfigError(
        `${where}: CP rank ${R} exceeds ${bound}, the largest CP rank of a tensor with modes (${names.map((n, k) => `${n} ${sizes[k]}`).join(", ")}); use R ≤ ${bound}`,
      );
    }
  },
  params: ({ sizes }, [R]) => sizes.map((n, i) => ({ key: `factors.${i}`, shape: [n, R], modes: [i, -1], zero: i === 0 })),
  inputKey: "factors.0",
  inputRank: ([R]) => R,
  /**
   * R[a, (p l), o] = U_qkv[p, a] · U_depth[l, a] · U_out[o, a] (att: U_heads[h, a] · U_dh[j, a] at
   * the head layout's column) as broadcast products with the rank axis last, moved to the front
   * at the end.
   */
  slices(ops, get, modes) {
    const f = (i: number) => get(`factors.${i}`); // [T, I_i, R]
    const [T, , R] = ops.shape(f(0));
    // the index rows' product, [T, S, R] (p-major); absent without index modes
    let coef: ReturnType<typeof f> | undefined;
    let S = 1;
    for (const i of indexModes(modes)) {
      const n = modes.sizes[i];
      coef = coef ? ops.reshape(ops.mul(ops.reshape(coef, [T, S, 1, R]), ops.reshape(f(i), [T, 1, n, R])), [T, S * n, R]) : f(i);
      S *= n;
    }
    const outs = modes.att ? (modes.headMajor ? [2, 1] : [1, 2]) : [1]; // output axes, slowest first
    let r = coef ? ops.reshape(coef, [T, S, ...outs.map(() => 1), R]) : undefined;
    outs.forEach((i, k) => {
      const n = modes.sizes[i];
      const u = ops.reshape(f(i), [T, 1, ...outs.map((_, j) => (j === k ? n : 1)), R]);
      r = r ? ops.mul(r, u) : u;
    });
    const dOut = outs.reduce((a, i) => a * modes.sizes[i], 1);
    return ops.transpose(ops.reshape(r!, [T, S, dOut, R]), [0, 3, 1, 2]); // [T, R, S, dOut]
  },
  full: (get, { sizes }) => cpToTensor({ factors: sizes.map((_, i) => get(`factors.${i}`)) }),
  /** R is shared by every mode, with heads or without. */
  withoutHeads: (ranks) => [...ranks],
  initStd: () => 1,
  forBudget: ({ sizes }, budget) => [Math.floor(budget / sizes.reduce((a, b) => a + b, 0))],
};
