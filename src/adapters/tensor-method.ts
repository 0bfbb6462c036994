/**
 * The seven TensLoRA constructions as adapter methods, from one generator: a construction's
 * groups hold factorised tensors (Tucker, CP, TT or partial Tucker) whose modes its flags give
 * (constructions.ts), saved as `tenslora.<t>.<key>` with a `TENSLORA` config.
 */
import { ShapeError } from "../errors.ts";
import { type Dense, permute, reshape, sliceMode, unfold } from "../tensor/dense.ts";
import {
  CONSTRUCTION_SPECS,
  type Construction,
  type ModelShape,
  modeIndex,
  modeNames,
  modeSizes,
  tensorCount,
  tensorIndex,
  tensorModes,
} from "./constructions.ts";
import { DEFAULT_FACTORIZATION, FACTORIZATIONS, parseFactorization } from "./factorizations/index.ts";
import { hostOps } from "./factorizations/ops.ts";
import { count, type TensorModes } from "./factorizations/types.ts";
import { isLoraPair } from "./lora.ts";
import type { AdapterMethod, MethodParam } from "./method.ts";
import type { AdapterTensor, FactorisedTensor, HeadLayout } from "./reference.ts";
import { tensorKey, tensorSiteUpdates } from "./tensor-graph.ts";

/**
 * The (in, dh, heads) slice as [dIn, dOut] with the chosen head layout. head_major: column
 * h·dh + j, i.e. permute to (in, heads, dh) and reshape; interleaved: TensorLy's unfold(T, 0).
 */
function attToMatrix(t: Dense, layout: HeadLayout): Dense {
  const [rows, dh, heads] = t.shape;
  if (layout === "interleaved") return unfold(t, 0);
  return reshape(permute(t, [0, 2, 1]), [rows, heads * dh]);
}

/** The construction's TensLoRA entry. */
export function tensorMethod(c: Construction): AdapterMethod {
  const spec = CONSTRUCTION_SPECS[c];
  const where = `construction "${c}"`;
  // modes with placeholder sizes, for what does not depend on sizes (rank names, list lengths)
  const names = modeNames(c);
  const sizeless: TensorModes = { names, sizes: names.map(() => 1), att: spec.hasAtt, headMajor: true };
  const modesOf = (shape: ModelShape, layout: HeadLayout) => tensorModes(c, shape, layout === "head_major");
  const check = (shape: ModelShape, t: AdapterTensor): FactorisedTensor => {
    if (isLoraPair(t)) throw new ShapeError(`${where} needs factorised tensors, got a LoRA pair`);
    const { factorization: f, params, ranks } = t;
    const expected = FACTORIZATIONS[f].params(tensorModes(c, shape), ranks);
    const bad = expected.filter((e) => params.get(e.key)?.shape.join() !== e.shape.join());
    if (bad.length || params.size !== expected.length) {
      throw new ShapeError(
        `${where} (${f}) needs ${expected.map((e) => `${e.key} [${e.shape}]`).join(", ")}; got ${[...params].map(([k, d]) => `${k} [${d.shape}]`).join(", ")}`,
      );
    }
    return t;
  };
  return {
    factorised: true,
    spectrumRanks: true,
    peftAlpha: false,
    gqaMean: true,
    factorization: (asked) => parseFactorization(asked ?? DEFAULT_FACTORIZATION),
    rankNames: (f) => FACTORIZATIONS[f].rankNames(sizeless),
    checkRankList: (ranks, f) => void FACTORIZATIONS[f].ranks(sizeless, ranks, where),
    normalizeRanks: (shape, ranks, f) => FACTORIZATIONS[f].ranks(tensorModes(c, shape), ranks, where),
    checkRankBounds: (shape, ranks, f) => FACTORIZATIONS[f].checkBounds(tensorModes(c, shape), ranks, where),
    tensorParams: (shape, ranks, f) => count(FACTORIZATIONS[f], tensorModes(c, shape), ranks),
    forBudget: (shape, perTensor, opts, f) => FACTORIZATIONS[f].forBudget(tensorModes(c, shape), perTensor, opts),
    ranksWithoutHeads: (ranks, dOut, f) => FACTORIZATIONS[f].withoutHeads(ranks, dOut),
    params(config, group) {
      const def = FACTORIZATIONS[config.factorization];
      const specs = def.params(tensorModes(c, group.shape), group.ranks);
      const std = def.initStd(group.ranks);
      const out: MethodParam[] = [];
      for (let t = 0; t < tensorCount(c, group.shape); t++)
        for (const p of specs) out.push({ name: tensorKey(t, p.key, group.index), shape: p.shape, zero: p.zero, std });
      return out;
    },
    tensors(config, group, get) {
      const { factorization } = config;
      const specs = FACTORIZATIONS[factorization].params(tensorModes(c, group.shape), group.ranks);
      return Array.from({ length: tensorCount(c, group.shape) }, (_, t) => ({
        factorization,
        ranks: group.ranks,
        params: new Map(specs.map((p) => [p.key, get(tensorKey(t, p.key, group.index))])),
      }));
    },
    checkTensor: (shape, t) => void check(shape, t),
    folded(shape, t, layout, p, l) {
      const { factorization, params } = check(shape, t);
      let full = FACTORIZATIONS[factorization].full((k) => params.get(k)!, modesOf(shape, layout));
      const { fixed } = tensorIndex(c, shape, p, l);
      // slice the later mode first so the earlier mode's position is unchanged
      if (fixed.depth !== undefined) full = sliceMode(full, modeIndex(c, "depth"), fixed.depth);
      if (fixed.qkv !== undefined) full = sliceMode(full, modeIndex(c, "qkv"), fixed.qkv);
      return spec.hasAtt ? attToMatrix(full, layout) : full;
    },
    slice(shape, t, layout, p, l) {
      const { factorization, params } = check(shape, t);
      const def = FACTORIZATIONS[factorization];
      const all = def.slices(hostOps, (k) => reshape(params.get(k)!, [1, ...params.get(k)!.shape]), modesOf(shape, layout)); // [1, r_in, S, dOut]
      const [, rIn, S, dOut] = all.shape;
      const { fixed } = tensorIndex(c, shape, p, l);
      const i = (fixed.qkv ?? 0) * (spec.stacksDepth ? shape.layers : 1) + (fixed.depth ?? 0);
      const r = new Float64Array(rIn * dOut);
      for (let a = 0; a < rIn; a++) r.set(all.data.subarray((a * S + i) * dOut, (a * S + i + 1) * dOut), a * dOut);
      return { uIn: reshape(params.get(def.inputKey)!, [shape.dIn, rIn]), r: { shape: [rIn, dOut], data: r } };
    },
    siteUpdates: (config, group, get, options) => tensorSiteUpdates(config, group, get, options),
    configJson: (config, groups, model) => ({
      peft_type: "TENSLORA",
      construction: config.construction,
      factorization: config.factorization,
      ranks: config.ranks,
      scaling: config.scaling,
      head_layout: config.headLayout,
      init: config.init,
      gqa: config.gqa,
      groups: groups.map((g) => ({
        name: g.name,
        construction: g.construction,
        ranks: g.ranks,
        mode_names: modeNames(g.construction),
        mode_sizes: modeSizes(g.construction, g.shape),
      })),
      num_layers: model.layers,
      hidden_size: model.hidden,
      num_heads: model.heads,
    }),
  };
}
