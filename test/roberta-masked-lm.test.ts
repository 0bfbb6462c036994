/**
 * RoBERTa's masked-LM head and objective against a hand computation from the encoder's last
 * hidden state (dense → exact GELU → LayerNorm → tied decoder + bias; cross-entropy over the
 * masked positions only), the tied word-embedding gradient against finite differences, and the
 * pretrained folder loading as a sequence classifier (encoder kept, a new head), the
 * pretraining's masking against BERT's published rates, and <s>'s soft target (the block's tf-idf
 * distribution) against a hand computation, with its loss and gradient.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { saveModelFolder } from "../src/train/artifacts.ts";
import { loadModel } from "../src/models/load.ts";
import { randomModel } from "../src/models/init.ts";
import { robertaMaskedLm, robertaMaskedLmSummary } from "../src/models/roberta/masked-lm.ts";
import { SUMMARY_WEIGHT, idfWeights, maskBlock, summaryTarget } from "../src/experiments/embedded-encoder.ts";
import { Rng } from "../src/tensor/random.ts";
import { lmTaskData } from "../src/tasks/task-data.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import { ConfigError } from "../src/errors.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { modelRunner, outF32 } from "./helpers.ts";
import { tempDir } from "./make-data.ts";
import { erf } from "./reference.ts";

const CONFIG = {
  architectures: ["RobertaForMaskedLM"],
  model_type: "roberta",
  vocab_size: 37,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 24,
  max_position_embeddings: 12,
  type_vocab_size: 1,
  pad_token_id: 1,
  layer_norm_eps: 1e-5,
  initializer_range: 0.3,
};
const [B, T, V, D] = [2, 6, 37, 16];
const ids: HostTensor = { dtype: "int64", shape: [B, T], data: BigInt64Array.from([0, 7, 4, 9, 12, 2, 0, 5, 36, 2, 1, 1].map(BigInt)) };
const mask: HostTensor = { dtype: "int64", shape: [B, T], data: BigInt64Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0].map(BigInt)) };
// masked positions carry the original token, the rest −100 (never scored)
const labels: HostTensor = {
  dtype: "int64",
  shape: [B, T],
  data: BigInt64Array.from([-100, 11, -100, -100, 30, -100, -100, -100, 8, -100, -100, -100].map(BigInt)),
};

function model(family = robertaMaskedLm) {
  const m = randomModel(CONFIG, 3, "<test>", family);
  // a non-trivial head: LayerNorm scale/shift and biases away from their init
  for (const k of ["lm_head.layer_norm.weight", "lm_head.layer_norm.bias", "lm_head.bias", "lm_head.dense.bias"]) {
    const w = m.weights.get(k)!;
    w.data = w.data.map((_, i) => 0.5 + Math.sin(i + k.length));
  }
  return m;
}

/** Logits from the last hidden state as HF's RobertaLMHead computes them, in float64. */
function referenceLogits(h: Float32Array, w: (k: string) => Float32Array): Float64Array {
  const out = new Float64Array(B * T * V);
  const [dw, db, g, beta, bias, emb] = [
    "lm_head.dense.weight",
    "lm_head.dense.bias",
    "lm_head.layer_norm.weight",
    "lm_head.layer_norm.bias",
    "lm_head.bias",
    "roberta.embeddings.word_embeddings.weight",
  ].map(w);
  for (let p = 0; p < B * T; p++) {
    const x = Array.from({ length: D }, (_, o) => {
      let s = db[o];
      for (let i = 0; i < D; i++) s += dw[o * D + i] * h[p * D + i];
      return 0.5 * s * (1 + erf(s / Math.SQRT2));
    });
    const mean = x.reduce((a, b) => a + b, 0) / D;
    const vr = x.reduce((a, b) => a + (b - mean) ** 2, 0) / D;
    const y = x.map((v, i) => ((v - mean) / Math.sqrt(vr + 1e-5)) * g[i] + beta[i]);
    for (let v = 0; v < V; v++) {
      let s = bias[v];
      for (let i = 0; i < D; i++) s += emb[v * D + i] * y[i];
      out[p * V + v] = s;
    }
  }
  return out;
}

function referenceLoss(logits: Float64Array, ys: HostTensor = labels): number {
  let sum = 0;
  let n = 0;
  for (let p = 0; p < B * T; p++) {
    const y = Number(ys.data[p]);
    if (y === -100) continue;
    const row = logits.subarray(p * V, (p + 1) * V);
    const m = Math.max(...row);
    sum += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[y];
    n++;
  }
  return sum / n;
}

test("the masked-LM head and loss equal RobertaLMHead and cross-entropy over the masked positions", async () => {
  const m = model();
  const r = await modelRunner({ model: m, trainable: "none", loss: true, hiddenState: true, hf: { input_ids: ids, attention_mask: mask } });
  const out = await r.run({ input_ids: ids, attention_mask: mask }, { labels });
  r.dispose();
  assert.deepEqual(out.logits.shape, [B, T, V]);
  const ref = referenceLogits(outF32(out, "last_hidden_state"), (k) => m.weights.get(k)!.data);
  const logits = outF32(out, "logits");
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - logits[i]));
  assert.ok(worst < 1e-4, `logits differ from the reference by ${worst}`);
  const loss = outF32(out, "loss")[0];
  assert.ok(Math.abs(loss - referenceLoss(ref)) < 1e-4, `loss ${loss} vs reference ${referenceLoss(ref)}`);
});

test("the gradient of the tied word embeddings (input and decoder) matches finite differences of the loss", async () => {
  const m = model();
  const hf = { input_ids: ids, attention_mask: mask };
  const r = await modelRunner({ model: m, trainable: "all", loss: true, grads: true, hf });
  const key = "roberta.embeddings.word_embeddings.weight";
  const grad = outF32(await r.run(hf, { labels }), `grad.${key}`);
  const lossAt = async (k: number, dx: number) => {
    const params = new Map(m.weights);
    const w = m.weights.get(key)!;
    const data = w.data.slice();
    data[k] += dx;
    params.set(key, { shape: w.shape, data });
    return Number(outF32(await r.run(hf, { labels, params }), "loss")[0]);
  };
  // token 7 is read as an input and scored through the decoder; token 11 only through the decoder
  for (const k of [7 * D + 3, 11 * D + 5, 30 * D]) {
    const eps = 1e-2;
    const fd = ((await lossAt(k, eps)) - (await lossAt(k, -eps))) / (2 * eps);
    assert.ok(Math.abs(fd - grad[k]) < 2e-3 + 0.02 * Math.abs(fd), `element ${k}: autodiff ${grad[k]} vs finite difference ${fd}`);
  }
  r.dispose();
});

test("the summary head decodes <s> by the tied decoder from its own state, and its soft target adds Σ −q log p at <s> to the masked tokens' loss", async () => {
  const m = model(robertaMaskedLmSummary);
  // a soft target for <s> of each row, of mass 1 and 0.5 (filler-like rows would be 0)
  const q = new Float32Array(B * V);
  [
    [3, 0.25],
    [9, 0.75],
    [V + 4, 0.5],
  ].forEach(([i, w]) => {
    q[i] = w;
  });
  const target: HostTensor = { dtype: "float32", shape: [B, V], data: q };
  const hf = { input_ids: ids, attention_mask: mask };
  const r = await modelRunner({ model: m, trainable: "all", loss: true, targetSize: V, hiddenState: true, grads: true, hf });
  const out = await r.run(hf, { labels, target });
  const w = (k: string) => m.weights.get(k)!.data;
  const h = outF32(out, "last_hidden_state");
  const ref = referenceLogits(h, w);
  const [emb, bias] = [w("roberta.embeddings.word_embeddings.weight"), w("lm_head.bias")];
  for (let row = 0; row < B; row++)
    for (let v = 0; v < V; v++) {
      let x = bias[v];
      for (let i = 0; i < D; i++) x += emb[v * D + i] * h[row * T * D + i];
      ref[row * T * V + v] = x;
    }
  const logits = outF32(out, "logits");
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - logits[i]));
  assert.ok(worst < 1e-4, `logits differ from the reference by ${worst}`);
  // Σ_v −q_v log softmax(<s>'s logits)_v per row, averaged over the rows
  let soft = 0;
  for (let row = 0; row < B; row++) {
    const z = ref.subarray(row * T * V, row * T * V + V);
    const mx = Math.max(...z);
    const lse = mx + Math.log(z.reduce((a, v) => a + Math.exp(v - mx), 0));
    for (let v = 0; v < V; v++) soft -= q[row * V + v] * (z[v] - lse);
  }
  const expected = referenceLoss(ref) + soft / B;
  const loss = outF32(out, "loss")[0];
  assert.ok(Math.abs(loss - expected) < 1e-4, `loss ${loss} vs reference ${expected}`);
  // the gradient of the decoder rows the target names against finite differences
  const key = "roberta.embeddings.word_embeddings.weight";
  const grad = outF32(out, `grad.${key}`);
  const lossAt = async (k: number, dx: number) => {
    const params = new Map(m.weights);
    const data = m.weights.get(key)!.data.slice();
    data[k] += dx;
    params.set(key, { shape: m.weights.get(key)!.shape, data });
    return Number(outF32(await r.run(hf, { labels, target, params }), "loss")[0]);
  };
  for (const k of [3 * D + 1, 9 * D + 9, 4 * D + 2]) {
    const fd = ((await lossAt(k, 1e-2)) - (await lossAt(k, -1e-2))) / 2e-2;
    assert.ok(Math.abs(fd - grad[k]) < 2e-3 + 0.02 * Math.abs(fd), `element ${k}: autodiff ${grad[k]} vs finite difference ${fd}`);
  }
  r.dispose();
});

test("a pretrained masked-LM folder loads as a sequence classifier: the encoder's weights kept, a new head", () => {
  const m = model();
  const dir = join(tempDir(), "mlm");
  saveModelFolder(dir, m.rawConfig, m.weights);
  const cls = loadModel(dir, { numLabels: 2, labels: ["negative", "positive"], seed: 1 });
  assert.equal(cls.family.task, "text-classification");
  assert.ok(cls.newHead);
  const key = "roberta.encoder.layer.1.attention.self.query.weight";
  assert.deepEqual(cls.weights.get(key)!.data, m.weights.get(key)!.data);
  assert.deepEqual(cls.weights.get("classifier.out_proj.weight")!.shape, [2, D]);
  assert.ok(![...cls.weights.keys()].some((k) => k.startsWith("lm_head.")));
});

test("maskBlock chooses 15 % of the ordinary tokens, makes 80 % of those <mask>, 10 % random and keeps 10 %, labels them with the original", () => {
  const [vocab, maskId, bos, eos] = [50, 4, 0, 2];
  const ordinary = (x: number) => x > 4;
  const rng = new Rng(11);
  const counts = { ordinary: 0, chosen: 0, masked: 0, random: 0, kept: 0 };
  for (let n = 0; n < 2000; n++) {
    const ids = [bos, ...Array.from({ length: 30 }, () => 5 + rng.int(vocab - 5)), eos];
    const { ids: input, labels } = maskBlock(ids, rng, maskId, ordinary, vocab, () => 1);
    assert.equal(input[0], bos);
    assert.equal(input.at(-1), eos);
    assert.equal(labels.at(-1), -100);
    for (let t = 1; t < ids.length - 1; t++) {
      counts.ordinary++;
      if (labels[t] === -100) {
        assert.equal(input[t], ids[t], "an unchosen token is left as it is");
        continue;
      }
      assert.equal(labels[t], ids[t], "a chosen token is labelled with the original");
      counts.chosen++;
      if (input[t] === maskId) counts.masked++;
      else if (input[t] === ids[t]) counts.kept++;
      else {
        assert.ok(ordinary(input[t]), "a random replacement is an ordinary token");
        counts.random++;
      }
    }
  }
  // binomial standard errors: 60,000 tokens, ~9,000 chosen; within 4 of them
  const within = (x: number, n: number, p: number) => Math.abs(x / n - p) < 4 * Math.sqrt((p * (1 - p)) / n);
  assert.ok(within(counts.chosen, counts.ordinary, 0.15), `chosen ${counts.chosen} of ${counts.ordinary}`);
  // a random replacement equal to the original counts as kept: p(kept) = 0.1 + 0.1 / 45
  assert.ok(within(counts.masked, counts.chosen, 0.8), `<mask> ${counts.masked} of ${counts.chosen}`);
  assert.ok(within(counts.random, counts.chosen, 0.1 - 0.1 / 45), `random ${counts.random} of ${counts.chosen}`);
  assert.ok(within(counts.kept, counts.chosen, 0.1 + 0.1 / 45), `kept ${counts.kept} of ${counts.chosen}`);
});

test("<s>'s target is its block's ordinary tokens weighted by count times weight, normalised to sum 1; maskBlock attaches it and leaves <s> unlabelled", () => {
  const [vocab, maskId, bos, eos, pad] = [50, 4, 0, 2, 1];
  const ordinary = (x: number) => x > 4;
  // counts in the block: 9 ×3, 12 ×4, 20 ×1, 31 ×2; <mask> and <pad> inside it too
  const ids = [bos, 9, 12, 9, maskId, 12, 20, 31, 12, 9, pad, 31, 12, eos];
  // every id weighs something, specials included: only `ordinary` keeps them out
  const weight = (x: number) => (x === 20 ? 0 : x === 12 ? 0.5 : x === 31 ? 3 : 1);
  // tf × weight by hand: 9 → 3 × 1, 12 → 4 × 0.5, 31 → 2 × 3, over their sum 11
  const expected = new Map([
    [9, 3 / 11],
    [12, 2 / 11],
    [31, 6 / 11],
  ]);
  const check = (got: { ids: ArrayLike<number>; weights: ArrayLike<number> } | undefined, mass: number) => {
    assert.ok(got);
    assert.deepEqual(
      Array.from(got.ids).sort((a, b) => a - b),
      [...expected.keys()],
    );
    const sum = Array.from(got.weights).reduce((a, w) => a + w, 0);
    assert.ok(Math.abs(sum - mass) < 1e-12, `the target sums to ${sum}, not ${mass}`);
    for (let k = 0; k < got.ids.length; k++) {
      const want = mass * expected.get(got.ids[k])!;
      assert.ok(Math.abs(got.weights[k] - want) < 1e-12, `token ${got.ids[k]}: ${got.weights[k]} vs ${want}`);
    }
  };
  check(
    summaryTarget(ids, (x) => (ordinary(x) ? weight(x) : 0)),
    1,
  );
  const example = maskBlock(ids, new Rng(5), maskId, ordinary, vocab, weight);
  assert.equal(example.labels[0], -100);
  check(example.target, SUMMARY_WEIGHT);
  // a block whose tokens all weigh 0 gives <s> no target
  assert.equal(maskBlock([bos, 20, 20, eos], new Rng(5), maskId, ordinary, vocab, weight).target, undefined);
});

test("idfWeights is ln(blocks / blocks holding the token), counting a token once per block", () => {
  const idf = idfWeights(
    [
      [0, 5, 5, 6, 2],
      [0, 5, 2],
      [0, 7, 2],
      [0, 6, 6, 2],
    ],
    9,
  );
  const expected = [0, 0, 0, 0, 0, Math.log(4 / 2), Math.log(4 / 2), Math.log(4), 0];
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(idf[i] - expected[i]) < 1e-12, `token ${i}: ${idf[i]} vs ${expected[i]}`);
});

test("with idfWeights, <s>'s target is its block's tf-idf over its tokens, normalised: count × ln(blocks / blocks holding it), a token in every block weighing 0", () => {
  // token 8 is in every block (idf 0); 5 and 6 in 3 of 5 blocks, 7 in 2
  const blocks = [
    [0, 8, 5, 5, 6, 2],
    [0, 8, 5, 2],
    [0, 8, 7, 2],
    [0, 8, 6, 6, 2],
    [0, 5, 7, 8, 7, 6, 8, 2],
  ];
  const idf = idfWeights(blocks, 9);
  const ordinary = (x: number) => x > 4;
  const got = summaryTarget(blocks[4], (x) => (ordinary(x) ? idf[x] : 0))!;
  const tfidf = new Map([
    [5, 1 * Math.log(5 / 3)],
    [7, 2 * Math.log(5 / 2)],
    [6, 1 * Math.log(5 / 3)],
  ]);
  const total = [...tfidf.values()].reduce((a, w) => a + w, 0);
  assert.deepEqual([...got.ids].sort(), [5, 6, 7]);
  assert.ok(Math.abs(got.weights.reduce((a, w) => a + w, 0) - 1) < 1e-12);
  got.ids.forEach((id, k) =>
    assert.ok(Math.abs(got.weights[k] - tfidf.get(id)! / total) < 1e-12, `token ${id}: ${got.weights[k]} vs ${tfidf.get(id)! / total}`),
  );
});

test("lmTaskData with a target size batches each block's sparse target as a dense row, filler rows 0", async () => {
  const ex = (ids: number[], target?: { ids: number[]; weights: number[] }) => ({ ids, labels: ids.map(() => -100), ...(target && { target }) });
  const train = [ex([0, 7, 8, 2], { ids: [7, 8], weights: [0.25, 0.75] }), ex([0, 9, 2]), ex([0, 5, 2], { ids: [5], weights: [2] })];
  const data = lmTaskData({ train, test: train }, 1, 10);
  assert.equal(data.targetSize, 10);
  const batch = await data.batch("train", [2, 0, 1], 4);
  assert.deepEqual(batch.target!.shape, [4, 10]);
  const want = new Float32Array(40);
  want[5] = 2;
  want[10 + 7] = 0.25;
  want[10 + 8] = 0.75;
  assert.deepEqual(batch.target!.data, want);
  assert.equal((await lmTaskData({ train, test: train }, 1).batch("train", [0], 2)).target, undefined);
});

test("a soft target on a task that trains on none is refused when the graph is built, not ignored", () => {
  const m = model();
  const dir = join(tempDir(), "cls");
  saveModelFolder(dir, m.rawConfig, m.weights);
  const cls = loadModel(dir, { numLabels: 2, labels: ["a", "b"], seed: 1 });
  assert.throws(
    () => buildModelGraph({ model: cls, batch: 2, seqLen: T, trainable: "head", loss: true, targetSize: 2 }),
    (e: unknown) => e instanceof ConfigError && /text-classification has none/.test(e.message),
  );
});
