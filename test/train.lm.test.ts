/**
 * Causal-LM fine-tuning of the tiny Llama (GQA: 4 query / 2 K/V heads) with prompt/completion
 * records: every construction and LoRA on q, k, v, and LoRA, qkv_depth and att_qkv_depth on all
 * seven linear layers, lower the completion loss; and the loss
 * takes no gradient from the logits at prompt or padding positions (so prompts carry no loss).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { CONSTRUCTIONS } from "../src/adapters/constructions.ts";
import { groupRanksForBudget } from "../src/adapters/params.ts";
import { grad } from "../src/autodiff/vjp.ts";
import { buildLmExamples, LmTokenizer, type LmRecord } from "../src/data/lm-data.ts";
import { Graph } from "../src/ir/graph.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import { createAdapter } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { WeightStore } from "../src/onnx/weight-store.ts";
import { compile, nodeRuntime } from "../src/runtime/session.ts";
import { causalLm, causalLmLoss } from "../src/tasks/causal-lm.ts";
import { lmTaskData } from "../src/tasks/task-data.ts";
import { train } from "../src/train/trainer.ts";
import { runFolderStore } from "../src/train/run-folder-store.ts";
import { tempDir } from "./make-data.ts";

const LLAMA = "test/fixtures/hf-tiny-lm/llama";

/** Prompts of 2–4 words; the completion continues the count (w_a … → w_{a+k}). */
function records(n: number): LmRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const a = 6 + ((i * 11) % 50);
    const p = 2 + (i % 3);
    const words = (from: number, k: number) => Array.from({ length: k }, (_, j) => `w${from + j}`).join(" ");
    return { kind: "completion", prompt: words(a, p), completion: words(a + p, 3) };
  });
}

function data() {
  const model = loadModel(LLAMA);
  const tok = new LmTokenizer(LLAMA);
  const { examples } = buildLmExamples(tok, { records: records(24) }, { maxLength: 32, truncation: true, packing: false }, "records");
  return { model, tok, examples, task: lmTaskData({ train: examples, test: examples }, tok.eosId!) };
}

test("prompt and padding positions carry no loss: the loss's gradient is zero at their logits and non-zero at completion positions", async () => {
  const { task, examples } = data();
  const B = 4;
  const batch = await task.batch("train", [0, 1, 2], B);
  const T = task.seqLen!;
  const V = 128;
  const g = new Graph();
  const logits = g.input("logits", "float32", [B, T, V]);
  const labels = g.input("labels", "int64", [B, T]);
  const loss = causalLmLoss(logits, labels);
  g.output("loss", loss);
  g.output("dlogits", grad(loss, [logits])[0]);
  const run = await compile(g);
  try {
    const x = Float32Array.from({ length: B * T * V }, (_, i) => Math.sin(i * 0.37));
    const out = await run.run({ logits: { dtype: "float32", shape: [B, T, V], data: x }, labels: batch.labels });
    const d = out.dlogits.data as Float32Array;
    const rowNorm = (r: number, t: number) => d.subarray((r * T + t) * V, (r * T + t + 1) * V).reduce((a, v) => a + Math.abs(v), 0);
    let scored = 0;
    for (let r = 0; r < B; r++) {
      const e = r < 3 ? examples[r] : undefined;
      for (let t = 0; t < T; t++) {
        // position t predicts token t + 1: scored exactly when that token is a completion token
        const next = e && t + 1 < e.ids.length ? e.labels[t + 1] : -100;
        if (next === -100) assert.equal(rowNorm(r, t), 0, `row ${r} position ${t} (prompt, padding or filler) has a gradient`);
        else {
          assert.ok(rowNorm(r, t) > 1e-6, `row ${r} position ${t} (completion) has no gradient`);
          scored++;
        }
      }
    }
    assert.equal(scored, 3 * 4, "3 completions of 3 words and </s> each");
  } finally {
    run.dispose();
  }
});

test("every construction and LoRA on q, k, v (and three on all-linear) of the GQA Llama lowers the completion loss", async () => {
  const { model, task } = data();
  const store = new WeightStore();
  // the base model's loss on the completions (every adapter starts with a zero update)
  const evalBuilt = buildModelGraph({ model, batch: 8, seqLen: task.seqLen, trainable: "none" });
  const evalGraph = await compile(evalBuilt.graph, { store, threads: 1 });
  const before = (await causalLm.evaluate(task, "test", evalGraph, 8, (i) => model.family.feeds(model.config, i), "loss")).value;
  evalGraph.dispose();
  store.dispose();
  const sites = model.family.linearSites(model.config);
  const runs: [string, string[] | "all-linear"][] = [
    ...CONSTRUCTIONS.map((c): [string, string[]] => [c, ["q_proj", "k_proj", "v_proj"]]),
    ...(["lora", "qkv_depth", "att_qkv_depth"] as const).map((c): [string, "all-linear"] => [c, "all-linear"]),
  ];
  for (const [construction, targets] of runs) {
    const lora = construction === "lora";
    const groupRanks = lora ? undefined : groupRanksForBudget({ construction, targetModules: targets }, sites, { isoLora: 4 }).groupRanks;
    const ranks = groupRanks ? Object.values(groupRanks)[0] : [4];
    const { set } = createAdapter(model, {
      construction,
      ranks,
      groupRanks,
      targetModules: targets,
      scaling: lora ? undefined : 1,
      loraAlpha: lora ? 4 : undefined,
      seed: 1,
    });
    const out = tempDir();
    const r = await train({
      model,
      adapter: set,
      trainable: "adapter+head",
      data: task,
      config: {
        lr: 2e-2,
        weightDecay: 0,
        epochs: 4,
        batchSize: 8,
        warmup: 0,
        minLr: 2e-2,
        seed: 0,
        evalEvery: 0,
        saveEvery: 1000,
        maxGradNorm: 0,
        metric: "loss",
        dropout: 0,
        threads: 1,
      },
      store: runFolderStore(join(out, `${construction}-${targets}`)),
      runtime: nodeRuntime,
    });
    assert.ok(r.finalValue < before - 0.1, `${construction} on ${targets}: completion loss ${r.finalValue} did not fall below ${before} − 0.1`);
  }
});
