/**
 * The whole stack on a first real task: a two-layer MLP built in the IR, differentiated by the
 * engine, run by ONNX Runtime and trained with AdamW on three interleaved spirals: classes that
 * no straight boundary separates (chance is 1/3).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { grad } from "../src/autodiff/vjp.ts";
import { add, matmul, tanh } from "../src/ir/builder.ts";
import { crossEntropy } from "../src/ir/functional.ts";
import { Graph } from "../src/ir/graph.ts";
import { compile } from "../src/runtime/session.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { Rng } from "../src/tensor/random.ts";
import { adamw, flattenParams, segmentViews } from "../src/train/optim.ts";
import { warmupCosine } from "../src/train/schedule.ts";

const CLASSES = 3;

/** n points per class on three noisy spiral arms. */
function spirals(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const rng = new Rng(seed);
  const x = new Float32Array(n * CLASSES * 2);
  const y = new Int32Array(n * CLASSES);
  for (let c = 0; c < CLASSES; c++) {
    for (let i = 0; i < n; i++) {
      const r = (i + 1) / n;
      const t = (c * 2 * Math.PI) / CLASSES + 3.5 * r + 0.15 * rng.normal();
      const k = c * n + i;
      x[2 * k] = r * Math.cos(t);
      x[2 * k + 1] = r * Math.sin(t);
      y[k] = c;
    }
  }
  return { x, y };
}

test("a two-layer MLP learns three spirals through IR → autodiff → ONNX Runtime → AdamW", async () => {
  const H = 64;
  const N = 300; // training points (100 per class), one full batch
  const g = new Graph();
  const x = g.input("x", "float32", [N, 2]);
  const labels = g.input("labels", "int64", [N]);
  const w1 = g.input("w1", "float32", [H, 2]);
  const b1 = g.input("b1", "float32", [H]);
  const w2 = g.input("w2", "float32", [CLASSES, H]);
  const b2 = g.input("b2", "float32", [CLASSES]);
  const logits = add(matmul(tanh(add(matmul(x, w1, { transB: true }), b1)), w2, { transB: true }), b2);
  const loss = crossEntropy(logits, labels);
  const grads = grad(loss, [w1, b1, w2, b2]);
  g.output("loss", loss);
  g.output("logits", logits);
  ["w1", "b1", "w2", "b2"].forEach((n, i) => g.output(`grad.${n}`, grads[i]));
  const step = await compile(g, { threads: 1 });

  const rng = new Rng(1);
  const init = new Map<string, Float32Array>([
    ["w1", rng.normalArray(H * 2, 1.5)],
    ["b1", rng.normalArray(H, 0.5)],
    ["w2", rng.normalArray(CLASSES * H, 1 / Math.sqrt(H))],
    ["b2", new Float32Array(CLASSES)],
  ]);
  const shapes: Record<string, number[]> = { w1: [H, 2], b1: [H], w2: [CLASSES, H], b2: [CLASSES] };
  const { flat, layout } = flattenParams(init);
  const views = segmentViews(flat, layout);
  const opt = adamw({ weightDecay: 0 });
  const state = opt.init(layout);
  const steps = 400;
  const lr = warmupCosine({ baseLr: 0.03, minLr: 1e-4, totalSteps: steps, warmupSteps: 20 });

  const train = spirals(N / CLASSES, 2);
  const test_ = spirals(N / CLASSES, 3);
  const feeds = (d: { x: Float32Array; y: Int32Array }): Record<string, HostTensor> => ({
    x: { dtype: "float32", shape: [N, 2], data: d.x },
    labels: { dtype: "int64", shape: [N], data: BigInt64Array.from(d.y, (v) => BigInt(v)) },
    ...Object.fromEntries([...views].map(([k, v]) => [k, { dtype: "float32" as const, shape: shapes[k], data: v }])),
  });
  const accuracy = (logitsData: Float32Array, y: Int32Array) => {
    let right = 0;
    for (let i = 0; i < y.length; i++) {
      const row = logitsData.subarray(i * CLASSES, (i + 1) * CLASSES);
      if (row.indexOf(Math.max(...row)) === y[i]) right++;
    }
    return right / y.length;
  };

  const gradBuf = new Float32Array(layout.size);
  let first = Number.NaN;
  let last = Number.NaN;
  for (let s = 0; s < steps; s++) {
    const out = await step.run(feeds(train));
    last = Number(out.loss.data[0]);
    if (s === 0) first = last;
    for (const seg of layout.segments) gradBuf.set(out[`grad.${seg.name}`].data as Float32Array, seg.offset);
    opt.update(state, flat, gradBuf, lr(s));
  }
  const heldOut = accuracy((await step.run(feeds(test_))).logits.data as Float32Array, test_.y);
  step.dispose();
  assert.ok(last < 0.5 * first, `the training loss falls (from ${first.toFixed(3)} to ${last.toFixed(3)})`);
  assert.ok(heldOut > 1 / CLASSES + 0.45, `held-out accuracy ${heldOut.toFixed(3)} is far above chance (${(1 / CLASSES).toFixed(3)})`);
});
