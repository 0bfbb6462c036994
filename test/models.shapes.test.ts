/**
 * The model checks pass on checkpoints with other shapes and config options. There is
 * no PyTorch here, so the truth is a naive float64 forward pass written as loops in
 * test/helpers.ts, itself checked first against the HuggingFace golden files. Random checkpoints
 * with other hidden sizes, heads, layers, image/patch sizes, `qkv_bias: false`, `layer_norm_eps`,
 * vocabularies, pad ids, token types and legacy key names are written as HF folders, loaded with
 * `loadModel` and compared with the reference, bare and with adapters (logits and gradients,
 * the latter against central differences of the float64 reference).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AdapterSet } from "../src/adapters/adapter-set.ts";
import type { AdapterOptions } from "../src/adapters/config.ts";
import { loadAdapter } from "../src/adapters/format.ts";
import { toBigInt64 } from "../src/io/dtype-convert.ts";
import { type TensorInput, writeSafetensors } from "../src/io/safetensors.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { type LoadedModel, loadModel } from "../src/models/load.ts";
import type { WeightMap } from "../src/nn/params.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { Rng } from "../src/tensor/random.ts";
import {
  FIXTURES,
  type RawConfig,
  type RefOutputs,
  type RefWeights,
  dot,
  goldenF32,
  maxAbsDiff,
  modelRunner,
  naiveDeltaMap,
  naiveDeltaWeights,
  outF32,
  randomizeAdapter,
  readGolden,
  refRoberta,
  refViT,
  refWeights,
  sameBits,
  tempDir,
  planSet,
} from "./helpers.ts";

const ABS = 1e-4;

// ---------------------------------------------------------------------------------------------
// the reference itself against HuggingFace

test("the naive reference reproduces the HuggingFace golden files (base, PEFT LoRA, official TensLoRA ΔW)", () => {
  for (const name of ["vit", "roberta"] as const) {
    const raw = JSON.parse(readFileSync(join(FIXTURES, name, "config.json"), "utf8"));
    const model = loadModel(join(FIXTURES, name));
    const gold = readGolden(`${name}_base_golden`);
    const lora = loadAdapter(join(FIXTURES, `${name}_lora`), modelContext(model)).set;
    for (const [g, deltas] of [
      [gold, undefined],
      [readGolden(`${name}_lora_golden`), naiveDeltaMap(lora)],
    ] as const) {
      const out = runRef(model, raw, refWeights(model.weights), goldenInputs(gold), deltas);
      assert.ok(maxAbsDiff(out.logits, goldenF32(g, "logits")) < ABS, `${name}: reference logits`);
      if (!deltas) assert.ok(maxAbsDiff(out.lastHiddenState, goldenF32(g, "last_hidden_state")) < ABS, `${name}: reference hidden state`);
      assert.ok(Math.abs(out.loss! - goldenF32(g, "loss")[0]) < ABS, `${name}: reference loss`);
    }
    // the naive fold of the official factors (interleaved heads) gives the official ΔW
    const tg = readGolden(`${name}_tenslora_att_qkv_depth_golden`);
    const ctx = modelContext(model);
    const planned = planSet(ctx.sites, { construction: "att_qkv_depth", ranks: tg.get("core")!.shape, scaling: 2, headLayout: "interleaved" });
    const tensors: WeightMap = new Map([["tenslora.0.core", { shape: tg.get("core")!.shape, data: goldenF32(tg, "core") }]]);
    ["in", "head_dim", "head", "qkv", "layer"].forEach((m, i) =>
      tensors.set(`tenslora.0.factors.${i}`, { shape: tg.get(`factor_${i}_${m}`)!.shape, data: goldenF32(tg, `factor_${i}_${m}`) }),
    );
    const dws = naiveDeltaWeights({ ...planned, tensors });
    assert.ok(maxAbsDiff(dws[0][0], goldenF32(tg, "delta_weight.qkv0.layer0")) < 1e-5, `${name}: naive ΔW[q, 0]`);
    assert.ok(maxAbsDiff(dws[2][3], goldenF32(tg, "delta_weight.qkv2.layer3")) < 1e-5, `${name}: naive ΔW[v, 3]`);
  }
});

// ---------------------------------------------------------------------------------------------
// random checkpoints with other shapes

interface Case {
  name: string;
  raw: RawConfig;
  /** The adapter attached in the adapter check. */
  adapter: AdapterOptions;
  /** Write LayerNorm.gamma/beta, a position_ids buffer and a pooler (keys the loader maps or drops). */
  legacyKeys?: boolean;
  seqLen?: number;
}

const CASES: Case[] = [
  {
    name: "vit d48 H3 L2 image24 patch6 qkv_bias=false eps1e-6",
    raw: {
      model_type: "vit",
      hidden_size: 48,
      num_attention_heads: 3,
      num_hidden_layers: 2,
      intermediate_size: 80,
      image_size: 24,
      patch_size: 6,
      num_channels: 3,
      qkv_bias: false,
      layer_norm_eps: 1e-6,
      hidden_act: "gelu",
      id2label: { 0: "a", 1: "b", 2: "c", 3: "d" },
    },
    adapter: { construction: "att_qkv_depth", ranks: [4, 3, 2, 2, 2], scaling: 1.5 },
  },
  {
    name: "vit d32 H8 L3 image20 patch5 1 channel eps0.05",
    raw: {
      model_type: "vit",
      hidden_size: 32,
      num_attention_heads: 8,
      num_hidden_layers: 3,
      intermediate_size: 40,
      image_size: 20,
      patch_size: 5,
      num_channels: 1,
      layer_norm_eps: 0.05,
      num_labels: 3,
    },
    adapter: { construction: "lora", ranks: 3, loraAlpha: 6 },
  },
  {
    name: "roberta vocab57 d48 H3 L2 maxpos20 type_vocab1 eps1e-6",
    raw: {
      model_type: "roberta",
      vocab_size: 57,
      hidden_size: 48,
      num_attention_heads: 3,
      num_hidden_layers: 2,
      intermediate_size: 96,
      max_position_embeddings: 20,
      type_vocab_size: 1,
      pad_token_id: 1,
      layer_norm_eps: 1e-6,
      num_labels: 2,
    },
    adapter: { construction: "qkv", ranks: 3, factorization: "cp", scaling: 2 },
    seqLen: 9,
  },
  {
    name: "roberta vocab31 d40 H5 L3 pad3 type_vocab2 eps0.02 legacy gamma/beta keys",
    raw: {
      model_type: "roberta",
      vocab_size: 31,
      hidden_size: 40,
      num_attention_heads: 5,
      num_hidden_layers: 3,
      intermediate_size: 24,
      max_position_embeddings: 24,
      type_vocab_size: 2,
      pad_token_id: 3,
      layer_norm_eps: 0.02,
      num_labels: 3,
    },
    adapter: { construction: "att_depth", ranks: [3, 2, 3, 2], headLayout: "interleaved", scaling: 0.5 },
    legacyKeys: true,
    seqLen: 10,
  },
];

type Stored = Map<string, { shape: number[]; data: Float32Array }>;

/** HF key → shape of a ViT / RoBERTa classification checkpoint, written from the HF module names. */
function hfKeys(raw: RawConfig): Map<string, number[]> {
  const n = (k: string, f?: number) => (raw[k] ?? f) as number;
  const d = n("hidden_size");
  const I = n("intermediate_size");
  const labels = n("num_labels", Object.keys((raw.id2label as object) ?? {}).length || 2);
  const m = new Map<string, number[]>();
  const lin = (path: string, o: number, i: number, bias = true) => {
    m.set(`${path}.weight`, [o, i]);
    if (bias) m.set(`${path}.bias`, [o]);
  };
  const ln = (path: string) => {
    m.set(`${path}.weight`, [d]);
    m.set(`${path}.bias`, [d]);
  };
  if (raw.model_type === "vit") {
    const p = n("patch_size");
    const C = n("num_channels", 3);
    const tokens = (n("image_size") / p) ** 2 + 1;
    m.set("vit.embeddings.cls_token", [1, 1, d]);
    m.set("vit.embeddings.position_embeddings", [1, tokens, d]);
    m.set("vit.embeddings.patch_embeddings.projection.weight", [d, C, p, p]);
    m.set("vit.embeddings.patch_embeddings.projection.bias", [d]);
    for (let l = 0; l < n("num_hidden_layers"); l++) {
      const lp = `vit.encoder.layer.${l}`;
      for (const q of ["query", "key", "value"]) lin(`${lp}.attention.attention.${q}`, d, d, raw.qkv_bias !== false);
      lin(`${lp}.attention.output.dense`, d, d);
      lin(`${lp}.intermediate.dense`, I, d);
      lin(`${lp}.output.dense`, d, I);
      ln(`${lp}.layernorm_before`);
      ln(`${lp}.layernorm_after`);
    }
    ln("vit.layernorm");
    lin("classifier", labels, d);
    return m;
  }
  const e = "roberta.embeddings";
  m.set(`${e}.word_embeddings.weight`, [n("vocab_size"), d]);
  m.set(`${e}.position_embeddings.weight`, [n("max_position_embeddings"), d]);
  m.set(`${e}.token_type_embeddings.weight`, [n("type_vocab_size"), d]);
  ln(`${e}.LayerNorm`);
  for (let l = 0; l < n("num_hidden_layers"); l++) {
    const lp = `roberta.encoder.layer.${l}`;
    for (const q of ["query", "key", "value"]) lin(`${lp}.attention.self.${q}`, d, d);
    lin(`${lp}.attention.output.dense`, d, d);
    ln(`${lp}.attention.output.LayerNorm`);
    lin(`${lp}.intermediate.dense`, I, d);
    lin(`${lp}.output.dense`, d, I);
    ln(`${lp}.output.LayerNorm`);
  }
  lin("classifier.dense", d, d);
  lin("classifier.out_proj", labels, d);
  return m;
}

/** Seeded non-trivial values, as the fixtures: LN weights 1 + 0.1·N, biases 0.05·N, linear N(0, 1/fan_in), embeddings 0.5·N. */
function randomWeights(raw: RawConfig, seed: number): Stored {
  const rng = new Rng(seed);
  const out: Stored = new Map();
  for (const [k, shape] of hfKeys(raw)) {
    const size = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/(LayerNorm|layernorm[a-z_]*)\.weight$/.test(k)) data = rng.normalArray(size, 0.1).map((v) => 1 + v);
    else if (k.endsWith(".bias")) data = rng.normalArray(size, 0.05);
    else if (shape.length >= 2 && !k.includes("embeddings.")) data = rng.normalArray(size, 1 / Math.sqrt(size / shape[0]));
    else if (k.endsWith("projection.weight")) data = rng.normalArray(size, 1 / Math.sqrt(size / shape[0]));
    else data = rng.normalArray(size, 0.5);
    out.set(k, { shape, data });
  }
  return out;
}

// ---- half-precision encodings written here, independently of src/io/dtype-convert.ts

function roundHalfEven(y: number): number {
  const f = Math.floor(y);
  const r = y - f;
  return r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** IEEE binary16 bits of a float32 value, round to nearest even (subnormals included). */
export function toF16Bits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // 0x400 there is the smallest normal
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  return e > 15 ? sign | 0x7c00 : sign | ((e + 15) << 10) | m;
}

export function fromF16Bits(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits: the top 16 bits of the float32, rounded to nearest even. */
export function toBf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fromBf16Bits(h: number): number {
  return new Float32Array(new Uint32Array([h << 16]).buffer)[0];
}

type StoredDtype = "F32" | "F16" | "BF16";

/** Write config.json + model.safetensors; returns the values the file really holds (after half rounding). */
function writeHfFolder(dir: string, raw: RawConfig, weights: Stored, dtype: StoredDtype, legacyKeys = false): Stored {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw, null, 2));
  const tensors = new Map<string, TensorInput>();
  const held: Stored = new Map();
  for (const [k, t] of weights) {
    const key = legacyKeys ? k.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta") : k;
    if (dtype === "F32") {
      tensors.set(key, { dtype: "F32", shape: t.shape, data: t.data });
      held.set(k, t);
      continue;
    }
    const bits = Uint16Array.from(t.data, dtype === "F16" ? toF16Bits : toBf16Bits);
    tensors.set(key, { dtype, shape: t.shape, data: bits });
    held.set(k, { shape: t.shape, data: Float32Array.from(bits, dtype === "F16" ? fromF16Bits : fromBf16Bits) });
  }
  if (legacyKeys) {
    const P = raw.max_position_embeddings as number;
    tensors.set("roberta.embeddings.position_ids", { dtype: "I64", shape: [1, P], data: BigInt64Array.from({ length: P }, (_, i) => BigInt(i)) });
    const d = raw.hidden_size as number;
    tensors.set("roberta.pooler.dense.weight", { dtype: "F32", shape: [d, d], data: new Float32Array(d * d).fill(0.01) });
    tensors.set("roberta.pooler.dense.bias", { dtype: "F32", shape: [d], data: new Float32Array(d) });
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  return held;
}

interface Inputs {
  hf: Record<string, HostTensor>;
  labels: HostTensor;
  px?: Float32Array;
  ids?: number[];
  mask?: number[];
  types?: number[];
}

function randomInputs(raw: RawConfig, seed: number, seqLen = 8): Inputs {
  const rng = new Rng(seed);
  const B = 2;
  const C = Number(raw.num_labels ?? Object.keys((raw.id2label as object) ?? {}).length);
  const labels: HostTensor = { dtype: "int64", shape: [B], data: BigInt64Array.from({ length: B }, (_, i) => BigInt((i * 2 + 1) % C)) };
  if (raw.model_type === "vit") {
    const S = raw.image_size as number;
    const ch = (raw.num_channels ?? 3) as number;
    const px = rng.normalArray(B * ch * S * S);
    return { hf: { pixel_values: { dtype: "float32", shape: [B, ch, S, S], data: px } }, labels, px };
  }
  const T = seqLen;
  const pad = raw.pad_token_id as number;
  const V = raw.vocab_size as number;
  const ids: number[] = [];
  const mask: number[] = [];
  for (let b = 0; b < B; b++) {
    const real = b === 0 ? T : T - 3; // row 1 ends in three pads
    for (let t = 0; t < T; t++) {
      let id = rng.int(V);
      while (id === pad) id = rng.int(V);
      ids.push(t < real ? id : pad);
      mask.push(t < real ? 1 : 0);
    }
  }
  const types = (raw.type_vocab_size as number) > 1 ? ids.map(() => rng.int(raw.type_vocab_size as number)) : undefined;
  const i64 = (v: number[]): HostTensor => ({ dtype: "int64", shape: [B, T], data: BigInt64Array.from(v, (x) => BigInt(x)) });
  const hf: Record<string, HostTensor> = { input_ids: i64(ids), attention_mask: i64(mask) };
  if (types) hf.token_type_ids = i64(types);
  return { hf, labels, ids, mask, types };
}

function goldenInputs(gold: ReturnType<typeof readGolden>): Inputs {
  const labels: HostTensor = { dtype: "int64", shape: gold.get("labels")!.shape, data: toBigInt64(gold.get("labels")!) };
  if (gold.has("pixel_values")) {
    const px = goldenF32(gold, "pixel_values");
    return { hf: { pixel_values: { dtype: "float32", shape: gold.get("pixel_values")!.shape, data: px } }, labels, px };
  }
  const ids = Array.from(toBigInt64(gold.get("input_ids")!), Number);
  const mask = Array.from(toBigInt64(gold.get("attention_mask")!), Number);
  return { hf: {}, labels, ids, mask };
}

function runRef(model: LoadedModel, raw: RawConfig, w: RefWeights, inp: Inputs, deltas?: Map<string, Float64Array>): RefOutputs {
  const labels = Array.from(inp.labels.data as BigInt64Array, Number);
  if (model.family.modelType === "vit") return refViT(raw, w, inp.px!, 2, { deltas, labels });
  return refRoberta(raw, w, inp.ids!, inp.mask!, 2, { deltas, labels, tokenTypes: inp.types });
}

for (const [ci, c] of CASES.entries()) {
  test(`other shapes: ${c.name}: logits, hidden state and loss equal the reference; adapter logits and gradients too`, async (t) => {
    const { dir, cleanup } = tempDir("shapes");
    try {
      const stored = writeHfFolder(dir, c.raw, randomWeights(c.raw, 100 + ci), "F32", c.legacyKeys);
      const model = loadModel(dir);
      assert.equal(model.newHead, false);
      for (const [k, v] of stored) assert.ok(sameBits(model.weights.get(k)!.data, v.data), `${k} loaded with other values`);
      const inp = randomInputs(c.raw, 200 + ci, c.seqLen);
      const w = refWeights(stored);

      // the bare model
      const ref = runRef(model, c.raw, w, inp);
      const base = await modelRunner({ model, hf: inp.hf, trainable: "none", loss: true, hiddenState: true });
      let dLogits: number;
      let dHidden: number;
      try {
        const out = await base.run(inp.hf, { labels: inp.labels });
        dLogits = maxAbsDiff(outF32(out, "logits"), ref.logits);
        dHidden = maxAbsDiff(outF32(out, "last_hidden_state"), ref.lastHiddenState);
        assert.ok(dLogits < ABS, `logits differ by ${dLogits}`);
        assert.ok(dHidden < ABS, `last_hidden_state differs by ${dHidden}`);
        assert.ok(Math.abs(outF32(out, "loss")[0] - ref.loss!) < ABS, `loss ${outF32(out, "loss")[0]} vs reference ${ref.loss}`);
      } finally {
        base.dispose();
      }

      // with an adapter: random non-zero parameters, logits and the gradient of every adapter tensor
      const ctx = modelContext(model);
      const set = randomizeAdapter(planSet(ctx.sites, c.adapter), 300 + ci, 0.3);
      const withAdapter = await modelRunner({ model, hf: inp.hf, adapter: set, trainable: "adapter+head", loss: true, grads: true });
      try {
        const out = await withAdapter.run(inp.hf, { labels: inp.labels });
        const refA = runRef(model, c.raw, w, inp, naiveDeltaMap(set));
        const dA = maxAbsDiff(outF32(out, "logits"), refA.logits);
        assert.ok(dA < ABS, `adapter logits differ by ${dA}`);
        assert.ok(maxAbsDiff(refA.logits, ref.logits) > 1e-2, "the adapter must change the logits for this check to mean anything");
        const worst = directionalGradCheck(
          set,
          (s) => runRef(model, c.raw, w, inp, naiveDeltaMap(s)).loss!,
          (k) => outF32(out, `grad.${k}`),
          400 + ci,
        );
        t.diagnostic(
          `max |Δ| logits ${dLogits.toExponential(2)}, hidden ${dHidden.toExponential(2)}; with ${c.adapter.construction}: logits ${dA.toExponential(2)}, worst directional-derivative error ${worst.toExponential(2)} (relative)`,
        );
      } finally {
        withAdapter.dispose();
      }
    } finally {
      cleanup();
    }
  });
}

/**
 * For every adapter tensor θ_k and a random unit direction v: the graph's ⟨∂L/∂θ_k, v⟩ against
 * (L(θ + h v) − L(θ − h v)) / 2h of the float64 reference. Returns the worst relative error.
 */
function directionalGradCheck(set: AdapterSet, loss: (s: AdapterSet) => number, grad: (k: string) => Float32Array, seed: number): number {
  const rng = new Rng(seed);
  const h = 1e-4;
  let worst = 0;
  for (const [k, t] of set.tensors) {
    const v = Float64Array.from(rng.normalArray(t.data.length));
    const norm = Math.sqrt(dot(v, v));
    v.forEach((x, i) => (v[i] = x / norm));
    const shifted = (sign: number): AdapterSet => {
      const tensors = new Map(set.tensors);
      // a float64 copy in a Float32Array would round the step away: keep the reference exact
      tensors.set(k, { shape: t.shape, data: Float64Array.from(t.data, (x, i) => x + sign * h * v[i]) as unknown as Float32Array });
      return { ...set, tensors };
    };
    const numeric = (loss(shifted(1)) - loss(shifted(-1))) / (2 * h);
    const g = grad(k);
    const analytic = dot(g, v);
    const gNorm = Math.sqrt(dot(g, g));
    const err = Math.abs(analytic - numeric) / Math.max(gNorm, 1e-6);
    assert.ok(err < 1e-4, `${k}: ⟨grad, v⟩ = ${analytic}, central difference ${numeric} (‖grad‖ ${gNorm})`);
    assert.ok(gNorm > 1e-6, `${k}: zero gradient; the check would be empty`);
    worst = Math.max(worst, err);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// F16 / BF16 checkpoints, and a new head

for (const [ci, dtype] of [
  [0, "F16"],
  [0, "BF16"],
  [2, "BF16"],
] as const) {
  const c = CASES[ci];
  test(`${dtype} checkpoint (${c.raw.model_type}) loads as float32 values and computes like the reference`, async () => {
    const { dir, cleanup } = tempDir("half");
    try {
      const held = writeHfFolder(dir, c.raw, randomWeights(c.raw, 500 + ci), dtype);
      const model = loadModel(dir);
      for (const [k, v] of held) {
        const got = model.weights.get(k)!;
        assert.ok(got.data instanceof Float32Array, `${k} must be float32`);
        assert.ok(sameBits(got.data, v.data), `${k}: the ${dtype} values were not decoded exactly`);
      }
      const inp = randomInputs(c.raw, 600 + ci, c.seqLen);
      const ref = runRef(model, c.raw, refWeights(held), inp);
      const r = await modelRunner({ model, hf: inp.hf, trainable: "none", hiddenState: true });
      try {
        const out = await r.run(inp.hf);
        assert.ok(maxAbsDiff(outF32(out, "logits"), ref.logits) < ABS, `logits differ by ${maxAbsDiff(outF32(out, "logits"), ref.logits)}`);
        assert.ok(
          maxAbsDiff(outF32(out, "last_hidden_state"), ref.lastHiddenState) < ABS,
          `hidden states differ by ${maxAbsDiff(outF32(out, "last_hidden_state"), ref.lastHiddenState)}`,
        );
      } finally {
        r.dispose();
      }
    } finally {
      cleanup();
    }
  });
}

test("half-precision encoders used above round as IEEE does", () => {
  // exact values, round-half-even ties, subnormals, overflow
  assert.equal(toF16Bits(1), 0x3c00);
  assert.equal(toF16Bits(-2), 0xc000);
  assert.equal(toF16Bits(65504), 0x7bff);
  assert.equal(toF16Bits(70000), 0x7c00);
  assert.equal(toF16Bits(2 ** -24), 0x0001);
  assert.equal(toF16Bits(2 ** -14), 0x0400);
  assert.equal(toF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(toF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(fromF16Bits(0x3555), 0.333251953125);
  assert.equal(toBf16Bits(1), 0x3f80);
  assert.equal(fromBf16Bits(toBf16Bits(Math.PI)), 3.140625);
});

for (const ci of [0, 2]) {
  const c = CASES[ci];
  test(`${c.raw.model_type}: a new head replaces the stored one when numLabels differs; the rest is loaded as stored`, async () => {
    const { dir, cleanup } = tempDir("head");
    try {
      const stored = writeHfFolder(dir, c.raw, randomWeights(c.raw, 700 + ci), "F32");
      const d = c.raw.hidden_size as number;
      const same = loadModel(dir, { numLabels: stored.get(ci === 0 ? "classifier.bias" : "classifier.out_proj.bias")!.shape[0] });
      assert.equal(same.newHead, false);
      for (const [k, v] of stored) assert.ok(sameBits(same.weights.get(k)!.data, v.data), `${k}`);

      const model = loadModel(dir, { numLabels: 7 });
      assert.equal(model.newHead, true);
      const out = ci === 0 ? "classifier" : "classifier.out_proj";
      assert.deepEqual(model.weights.get(`${out}.weight`)!.shape, [7, d]);
      assert.ok(
        model.weights.get(`${out}.bias`)!.data.every((v) => v === 0),
        "a new head's bias starts at 0",
      );
      const head = new Set(model.family.headParameters(model.config));
      for (const [k, v] of stored) if (!head.has(k)) assert.ok(sameBits(model.weights.get(k)!.data, v.data), `${k} must be loaded as stored`);
      const inp = randomInputs({ ...c.raw, num_labels: 7, id2label: undefined }, 800, c.seqLen);
      const ref = runRef(model, c.raw, refWeights(model.weights), inp);
      const r = await modelRunner({ model, hf: inp.hf, trainable: "head", loss: true });
      try {
        const res = await r.run(inp.hf, { labels: inp.labels });
        assert.deepEqual(res.logits.shape, [2, 7]);
        assert.ok(maxAbsDiff(outF32(res, "logits"), ref.logits) < ABS, `logits with the new head differ by ${maxAbsDiff(outF32(res, "logits"), ref.logits)}`);
      } finally {
        r.dispose();
      }
    } finally {
      cleanup();
    }
  });
}
