/**
 * Tucker: T = G ×₁ U₁ ×₂ U₂ … ×_N U_N, core G [r₁, …, r_N] (zero at initialisation), factors
 * U_n [I_n, r_n]; one rank per mode. The paper's factorisation and the default.
 */
import { ConfigError } from "../../errors.ts";
import { tuckerNormalStd } from "../../tensor/init.ts";
import { tuckerToTensor } from "../../tensor/tucker.ts";
import type { SliceOps } from "./ops.ts";
import { searchTucker } from "./tucker-search.ts";
import { type FactorizationDef, indexModes } from "./types.ts";

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

function checkRank(r: number, where: string): void {
  if (!Number.isInteger(r) || r < 1) throw new ConfigError(`${where}: a rank must be an integer ≥ 1, got ${r}`);
}

/**
 * Checks one rank per mode of `names` (each an integer ≥ 1) and returns the wasted-rank warnings:
 * r_n above the mode's size, or above the product of the other ranks times `kept` (the sizes of
 * modes kept whole, which count at full rank).
 */
export function modeRankWarnings(names: readonly string[], sizes: readonly number[], list: readonly number[], where: string, kept = 1): string[] {
  list.forEach((r, i) => checkRank(r, `${where}, mode \`${names[i]}\``));
  const warnings: string[] = [];
  list.forEach((r, i) => {
    if (r > sizes[i]) warnings.push(`rank ${r} on mode \`${names[i]}\` (size ${sizes[i]}) adds parameters without expressiveness`);
    const others = list.reduce((acc, v, j) => (j === i ? acc : acc * v), kept);
    if (r > others)
      warnings.push(`rank ${r} on mode \`${names[i]}\` exceeds the product of the other ranks (${others}) and adds parameters without expressiveness`);
  });
  return warnings;
}

/** The Kronecker product of F [T, P, q] and G [T, L, e]: K[t, (p l), (q e)] = F[t, p, q]·G[t, l, e]. */
function kron<V>(ops: SliceOps<V>, F: V, G: V): V {
  const [T, P, q] = ops.shape(F);
  const [, L, e] = ops.shape(G);
  return ops.reshape(ops.mul(ops.reshape(F, [T, P, 1, q, 1]), ops.reshape(G, [T, 1, L, 1, e])), [T, P * L, q * e]);
}

/**
 * U_dh [T, dh, b] and U_heads [T, H, c] applied to C [T, a, b, c, S], giving [T, a, S, dOut] with
 * dOut head-major (h, j) or interleaved (j, h): two products, each batched over the rank axes in
 * front of the one it contracts and taking that operand transposed (which the GEMM does as it
 * packs).
 */
export function outputSideHeads<V>(ops: SliceOps<V>, c: V, T: number, [a, rb, rc]: number[], S: number, uDh: V, uHeads: V, headMajor: boolean): V {
  const [dh, H] = [ops.shape(uDh)[1], ops.shape(uHeads)[1]];
  const t = (x: V, dims: number[], u: V) =>
    ops.matmul(ops.reshape(x, [T, ...dims]), ops.reshape(u, [T, 1, ...ops.shape(u).slice(1)]), { transA: true, transB: true });
  const r = headMajor
    ? t(t(c, [a * rb, rc, S], uHeads), [a, rb, S * H], uDh) // [T, (a b), S, H] → [T, a, (S H), dh]
    : t(t(c, [a, rb, rc * S], uDh), [a, rc, S * dh], uHeads); // [T, a, (c S), dh] → [T, a, (S dh), H]
  return ops.reshape(r, [T, a, S, H * dh]);
}

export const tucker: FactorizationDef = {
  name: "tucker",
  rankNames: (modes) => [...modes.names],
  /**
   * Ranks above a mode's size, or above the product of the other ranks, are legal (the official
   * code allows rank 8 on the size-3 qkv mode to compare with LoRA r = 8) but add parameters
   * without expressiveness: the multilinear rank of any tensor satisfies r_n ≤ I_n and
   * r_n ≤ Π_{m≠n} r_m. They are reported as warnings.
   */
  ranks(modes, given, where) {
    const { names, sizes } = modes;
    const list = typeof given === "number" ? names.map(() => given) : [...given];
    if (list.length !== names.length) {
      throw new ConfigError(
        `${where} has ${names.length} modes (${names.join(", ")}): give one rank or ${names.length} ranks, got ${list.length} [${list.join(", ")}]`,
      );
    }
    return { ranks: list, warnings: modeRankWarnings(names, sizes, list, where) };
  },
  checkBounds({ names, sizes }, ranks, where) {
    const largest = Math.max(...sizes);
    ranks.forEach((r, i) => {
      if (r > largest) {
        throw new ConfigError(
          `${where}: rank ${r} on mode \`${names[i]}\` (size ${sizes[i]}) exceeds every mode size (${names.map((n, k) => `${n} ${sizes[k]}`).join(", ")}); use a rank ≤ ${sizes[i]}`,
        );
      }
    });
  },
  params: ({ sizes }, ranks) => [
    { key: "core", shape: [...ranks], modes: ranks.map(() => -1), zero: true },
    ...sizes.map((n, i) => ({ key: `factors.${i}`, shape: [n, ranks[i]], modes: [i, -1], zero: false })),
  ],
  inputKey: "factors.0",
  inputRank: (ranks) => ranks[0],
  /**
   * The index modes are the core's last axes, contracted with their factors' Kronecker product
   * K[(p l), (q e)] = F[p, q]·G[l, e] (36 × 36 at most) in one product; one mode at a time needed
   * a product batched over every rank triple with 3 × 3 matrices, ten times slower. Every
   * contraction is a GEMM, flat or batched, and no operand is ever transposed: ONNX Runtime ran
   * Einsum on these shapes at 3–25 GFLOP/s, and its Transpose of the core's small inner axes,
   * with its gradient, took 1 ms a step on 2 threads and 10 ms each on 16.
   */
  slices(ops, get, modes) {
    const core = get("core"); // [T, a, b, (c), (q), (e)]
    const [T, ...rk] = ops.shape(core);
    const f = (i: number) => get(`factors.${i}`); // [T, I_i, r_i]
    const idx = indexModes(modes).map(f);
    const k = idx.length === 2 ? kron(ops, idx[0], idx[1]) : idx[0]; // [T, S, (q e)]
    const S = k ? ops.shape(k)[1] : 1;
    const qe = k ? ops.shape(k)[2] : 1;
    if (modes.att) {
      const rankDims = rk.slice(0, 3);
      // [T, (a b c), S]; the output-side products then keep every gradient small
      const c = k ? ops.matmul(ops.reshape(core, [T, prod(rankDims), qe]), k, { transB: true }) : core;
      return outputSideHeads(ops, c, T, rankDims, S, f(1), f(2), modes.headMajor);
    }
    // [T, a, S, b] by a product batched over a, so that U_out meets [T, (a S), b]: applied to
    // [T, a, b, S] batched over a instead, U_out's gradient was an [a, dOut, b] tensor (3 M values
    // for depth at ViT-B size) summed over a
    const [a, rb] = rk;
    const dOut = modes.sizes[1];
    const c = k ? ops.matmul(ops.reshape(k, [T, 1, S, qe]), ops.reshape(core, [T, a, rb, qe]), { transB: true }) : core;
    return ops.reshape(ops.matmul(ops.reshape(c, [T, a * S, rb]), f(1), { transB: true }), [T, a, S, dOut]);
  },
  full: (get, { sizes }) => tuckerToTensor({ core: get("core"), factors: sizes.map((_, i) => get(`factors.${i}`)) }),
  /** The out rank is r_dh·r_heads, capped at dOut: the multilinear rank of the merged (dh, heads) mode. */
  withoutHeads: ([rIn, rDh, rHeads, ...rest], dOut) => [rIn, Math.min(rDh * rHeads, dOut), ...rest],
  /** Scaled so that the reconstruction has unit variance, whatever the number of modes. */
  initStd: (ranks) => tuckerNormalStd(ranks),
  forBudget: ({ sizes }, budget, { capAtModeSize, slack }) => {
    const exact = searchTucker(sizes, budget, capAtModeSize, 0);
    if (slack <= 0) return exact.ranks;
    const floor = Math.ceil((1 - slack) * exact.count);
    return floor < exact.count ? searchTucker(sizes, budget, capAtModeSize, floor).ranks : exact.ranks;
  },
};
