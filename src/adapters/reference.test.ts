import { test } from "node:test";
import assert from "node:assert/strict";
import { ShapeError } from "../errors.ts";
import { Rng } from "../tensor/random.ts";
import { type Dense, at, dense, relativeError, sizeOf } from "../tensor/dense.ts";
import { type CpTensor, type TuckerTensor, cpToTensor, tuckerToTensor } from "../tensor/tucker.ts";
import { CONSTRUCTIONS, type Construction, modeIndex, modeSizes, modelShape, tensorCount, tensorIndex } from "./constructions.ts";
import {
  type AdapterState,
  type AdapterTensor,
  type HeadLayout,
  type LoraPair,
  deltaWeightReference,
  deltaWeightSliced,
  factorisedFrom,
  sliceFactorsR,
  updateMatrixFolded,
} from "./reference.ts";

const shape = modelShape({ dIn: 5, dOut: 6, heads: 2, layers: 3 });
const LAYOUTS: HeadLayout[] = ["head_major", "interleaved"];

function rand(rng: Rng, s: number[]): Dense {
  return dense(
    s,
    Float64Array.from({ length: sizeOf(s) }, () => rng.normal()),
  );
}

type RawTensor = TuckerTensor | CpTensor | LoraPair;

/** Random tensors in TensorLy's layout (CP with weights), for `tuckerToTensor` / `cpToTensor` as the independent fold. */
function makeRaw(rng: Rng, c: Construction, kind: "tucker" | "cp"): RawTensor[] {
  const sizes = modeSizes(c, shape);
  const out: RawTensor[] = [];
  for (let t = 0; t < tensorCount(c, shape); t++) {
    if (c === "lora") out.push({ a: rand(rng, [3, shape.dIn]), b: rand(rng, [shape.dOut, 3]) });
    else if (kind === "cp") out.push({ weights: rand(rng, [3]), factors: sizes.map((s) => rand(rng, [s, 3])) });
    else {
      // ranks differ per mode, one above its mode size (rank 4 on a size-3 mode is legal)
      const ranks = sizes.map((s, n) => (n === 0 ? 3 : Math.min(4, s + 1)));
      out.push({ core: rand(rng, ranks), factors: sizes.map((s, n) => rand(rng, [s, ranks[n]])) });
    }
  }
  return out;
}

const adapterTensor = (t: RawTensor): AdapterTensor => ("a" in t ? t : factorisedFrom(t));

function makeTensors(rng: Rng, c: Construction, kind: "tucker" | "cp"): AdapterTensor[] {
  return makeRaw(rng, c, kind).map(adapterTensor);
}

/** Output column of (j, h) under a layout. */
function column(layout: HeadLayout, j: number, h: number, dh: number, H: number): number {
  return layout === "head_major" ? h * dh + j : j * H + h;
}

test("folded path: ΔW[o, i] = s · T[i, out(o), …, p, l] read straight from the full tensor", () => {
  const rng = new Rng(40);
  const s = 0.7;
  for (const c of CONSTRUCTIONS.filter((c) => c !== "lora")) {
    for (const kind of ["tucker", "cp"] as const) {
      for (const headLayout of LAYOUTS) {
        const raw = makeRaw(rng, c, kind);
        const state: AdapterState = { construction: c, shape, tensors: raw.map(adapterTensor), headLayout, scaling: s };
        for (let p = 0; p < 3; p++) {
          for (let l = 0; l < 3; l++) {
            const t = raw[tensorIndex(c, shape, p, l).tensor];
            const full = "core" in t ? tuckerToTensor(t) : cpToTensor(t as CpTensor);
            const dw = deltaWeightReference(state, p, l);
            assert.deepEqual(dw.shape, [shape.dOut, shape.dIn]);
            const tail = [...(modeIndex(c, "qkv") >= 0 ? [p] : []), ...(modeIndex(c, "depth") >= 0 ? [l] : [])];
            for (let i = 0; i < shape.dIn; i++) {
              if (modeIndex(c, "heads") >= 0) {
                const dh = shape.dOut / shape.heads;
                for (let j = 0; j < dh; j++) {
                  for (let h = 0; h < shape.heads; h++) {
                    const o = column(headLayout, j, h, dh, shape.heads);
                    assert.ok(Math.abs(at(dw, [o, i]) - s * at(full, [i, j, h, ...tail])) < 1e-12);
                  }
                }
              } else {
                for (let o = 0; o < shape.dOut; o++) assert.ok(Math.abs(at(dw, [o, i]) - s * at(full, [i, o, ...tail])) < 1e-12);
              }
            }
          }
        }
      }
    }
  }
});

test("sliced path U_in · R[p,l] equals the folded path for every construction, layout and factorization", () => {
  const rng = new Rng(41);
  for (const c of CONSTRUCTIONS) {
    for (const kind of ["tucker", "cp"] as const) {
      for (const headLayout of LAYOUTS) {
        const state: AdapterState = { construction: c, shape, tensors: makeTensors(rng, c, kind), headLayout, scaling: 1.3 };
        for (let p = 0; p < 3; p++) {
          for (let l = 0; l < 3; l++) {
            const folded = deltaWeightReference(state, p, l);
            const sliced = deltaWeightSliced(state, p, l);
            assert.ok(relativeError(sliced, folded) < 1e-5, `${c} ${kind} ${headLayout} (${p}, ${l})`);
            const t = state.tensors[tensorIndex(c, shape, p, l).tensor];
            const { uIn, r } = sliceFactorsR(c, shape, t, headLayout, p, l);
            assert.equal(uIn.shape[0], shape.dIn);
            assert.deepEqual(r.shape, [uIn.shape[1], shape.dOut]);
          }
        }
      }
    }
  }
});

test("lora: ΔW = s · B A entry by entry, and U_in = Aᵀ, R = Bᵀ", () => {
  const rng = new Rng(42);
  const tensors = makeTensors(rng, "lora", "tucker");
  const state: AdapterState = { construction: "lora", shape, tensors, headLayout: "head_major", scaling: 2 };
  const { a, b } = tensors[tensorIndex("lora", shape, 2, 1).tensor] as { a: Dense; b: Dense };
  const dw = deltaWeightReference(state, 2, 1);
  for (let o = 0; o < shape.dOut; o++) {
    for (let i = 0; i < shape.dIn; i++) {
      let v = 0;
      for (let k = 0; k < 3; k++) v += at(b, [o, k]) * at(a, [k, i]);
      assert.ok(Math.abs(at(dw, [o, i]) - 2 * v) < 1e-12);
    }
  }
  const { uIn, r } = sliceFactorsR("lora", shape, { a, b }, "head_major", 2, 1);
  assert.deepEqual(uIn.shape, [shape.dIn, 3]);
  assert.deepEqual(r.shape, [3, shape.dOut]);
  assert.equal(at(uIn, [4, 1]), at(a, [1, 4]));
});

test("the two head layouts differ by a column permutation, not by values", () => {
  const rng = new Rng(43);
  const tensors = makeTensors(rng, "att_qkv_depth", "tucker");
  const hm = updateMatrixFolded({ construction: "att_qkv_depth", shape, tensors, headLayout: "head_major", scaling: 1 }, 1, 2);
  const il = updateMatrixFolded({ construction: "att_qkv_depth", shape, tensors, headLayout: "interleaved", scaling: 1 }, 1, 2);
  const dh = 3;
  for (let i = 0; i < shape.dIn; i++) {
    for (let j = 0; j < dh; j++) for (let h = 0; h < 2; h++) assert.equal(at(hm, [i, h * dh + j]), at(il, [i, j * 2 + h]));
  }
  assert.ok(relativeError(hm, il) > 1e-3);
});

test("shape mismatches are ShapeErrors that say what was expected", () => {
  const rng = new Rng(44);
  const tensors = makeTensors(rng, "att", "tucker");
  assert.throws(
    () => deltaWeightSliced({ construction: "att", shape, tensors: tensors.slice(1), headLayout: "head_major", scaling: 1 }, 0, 0),
    (e: unknown) => e instanceof ShapeError && /9 tensors/.test(e.message),
  );
  const wrongMode = makeTensors(rng, "qkv", "tucker");
  assert.throws(() => sliceFactorsR("att", shape, wrongMode[0], "head_major", 0, 0), ShapeError);
  assert.throws(() => sliceFactorsR("att", shape, { a: rand(rng, [2, 5]), b: rand(rng, [6, 2]) }, "head_major", 0, 0), ShapeError);
});
