/**
 * Tensor-train: T[i₁, …, i_N] = G₁[:, i₁, :] · G₂[:, i₂, :] ⋯ G_N[:, i_N, :], cores
 * G_k [r_{k−1}, I_k, r_k] with r₀ = r_N = 1 and bond ranks r₁ … r_{N−1}. The first core is the
 * input factor U_in [I₁, r₁]; the second (the first output-side core) is zero at initialisation.
 * Slices contract the index cores at the selected indices first, as Tucker contracts its index
 * factors, then the output-side cores.
 */
import { ConfigError } from "../../errors.ts";
import { type Dense, matmul, reshape } from "../../tensor/dense.ts";
import { type FactorizationDef, indexModes } from "./types.ts";

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** r_k ≤ min(Π_{i≤k} I_i, Π_{i>k} I_i): the rank of the k-th unfolding of any tensor. */
function bondBounds(sizes: readonly number[]): number[] {
  return sizes.slice(0, -1).map((_, k) => Math.min(prod(sizes.slice(0, k + 1)), prod(sizes.slice(k + 1))));
}

const bonds = (ranks: readonly number[]) => [1, ...ranks, 1];

export const tt: FactorizationDef = {
  name: "tt",
  rankNames: ({ names }) => names.slice(0, -1).map((n, k) => `${n}-${names[k + 1]}`),
  ranks(modes, given, where) {
    const names = tt.rankNames(modes);
    const list = typeof given === "number" ? names.map(() => given) : [...given];
    if (list.length !== names.length) {
      throw new ConfigError(
        `${where}: a tensor-train over ${modes.names.length} modes (${modes.names.join(", ")}) has ${names.length} bond ranks (${names.join(", ")}): give one rank or ${names.length}, got ${list.length} [${list.join(", ")}]`,
      );
    }
    list.forEach((r, k) => {
      if (!Number.isInteger(r) || r < 1) throw new ConfigError(`${where}, bond \`${names[k]}\`: a rank must be an integer ≥ 1, got ${r}`);
    });
    const bound = bondBounds(modes.sizes);
    const warnings = list.flatMap((r, k) =>
      r > bound[k]
        ? [`bond rank ${r} on \`${names[k]}\` exceeds ${bound[k]}, the rank of that unfolding of any tensor, and adds parameters without expressiveness`]
        : [],
    );
    return { ranks: list, warnings };
  },
  checkBounds(modes, ranks, where) {
    const names = tt.rankNames(modes);
    const largest = Math.max(...modes.sizes);
    ranks.forEach((r, k) => {
      if (r > largest)
        throw new ConfigError(
          `${where}: bond rank ${r} on \`${names[k]}\` exceeds every mode size (${modes.names.map((n, i) => `${n} ${modes.sizes[i]}`).join(", ")}); use a rank ≤ ${bondBounds(modes.sizes)[k]}`,
        );
    });
  },
  params: ({ sizes }, ranks) => {
    const r = bonds(ranks);
    return sizes.map((n, k) => ({ key: `cores.${k}`, shape: [r[k], n, r[k + 1]], modes: [-1, k, -1], zero: k === 1 }));
  },
  inputKey: "cores.0",
  inputRank: (ranks) => ranks[0],
  slices(ops, get, modes) {
    const core = (k: number) => get(`cores.${k}`); // [T, r_{k−1}, I_k, r_k]
    const [T] = ops.shape(core(0));
    // the index cores at every (p, l): V [T, r, S], p-major
    let v: ReturnType<typeof core> | undefined;
    let S = 1;
    const idx = indexModes(modes);
    for (const k of [...idx].reverse()) {
      const [, ra, n, rb] = ops.shape(core(k));
      v = v ? ops.reshape(ops.matmul(ops.reshape(core(k), [T, ra * n, rb]), v), [T, ra, n * S]) : ops.reshape(core(k), [T, ra, n]);
      S *= n;
    }
    // one output-side core G [T, r, n, r'] met with V [T, r', S]: [T, r, S, n]
    const meet = (g: ReturnType<typeof core>, w: typeof v) => {
      const [, r, n, r2] = ops.shape(g);
      return w ? ops.matmul(ops.reshape(w, [T, 1, r2, S]), g, { transA: true, transB: true }) : ops.reshape(g, [T, r, 1, n]);
    };
    if (!modes.att) return meet(core(1), v); // [T, r₁, S, dOut]
    const [, r1, dh, r2] = ops.shape(core(1));
    const H = modes.sizes[2];
    const y = meet(core(2), v); // [T, r₂, S, H]
    const r = ops.matmul(ops.reshape(y, [T, 1, r2, S * H]), core(1), { transA: true, transB: true }); // [T, r₁, (S H), dh]
    if (modes.headMajor) return ops.reshape(r, [T, r1, S, H * dh]);
    return ops.reshape(ops.transpose(ops.reshape(r, [T, r1, S, H, dh]), [0, 1, 2, 4, 3]), [T, r1, S, dh * H]);
  },
  full(get, { sizes }) {
    const g0 = get("cores.0");
    let acc: Dense = reshape(g0, [g0.shape[1], g0.shape[2]]);
    for (let k = 1; k < sizes.length; k++) {
      const g = get(`cores.${k}`);
      acc = matmul(reshape(acc, [acc.data.length / g.shape[0], g.shape[0]]), reshape(g, [g.shape[0], g.shape[1] * g.shape[2]]));
    }
    return reshape(acc, sizes);
  },
  /** The in-dh bond becomes in-out and the dh-heads bond, inside the merged out mode, goes. */
  withoutHeads: ([rInDh, , ...rest]) => [rInDh, ...rest],
  initStd: () => 1,
  /** Equal bond ranks r (each capped at its bound with `capAtModeSize`), the largest r whose count fits. */
  forBudget({ sizes }, budget, { capAtModeSize }) {
    const bound = bondBounds(sizes);
    const at = (r: number) => sizes.map((_, k) => (capAtModeSize ? Math.min(r, bound[k]) : r)).slice(0, -1);
    const countOf = (ranks: number[]) => sizes.reduce((n, s, k) => n + bonds(ranks)[k] * s * bonds(ranks)[k + 1], 0);
    let r = 1;
    const top = capAtModeSize ? Math.max(...bound) : budget;
    while (r < top && countOf(at(r + 1)) <= budget) r++;
    return at(r);
  },
};
