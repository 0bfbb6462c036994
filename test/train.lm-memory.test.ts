/**
 * Causal-LM training with the memory options (--checkpoint-activations, --loss-chunk) through
 * runTraining on the tiny Llama: a run stopped after a few steps and resumed ends with the same
 * adapter bytes and the same logged losses as an uninterrupted one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS, applyConfig } from "../src/experiments/run-config.ts";
import { runTraining } from "../src/experiments/run.ts";
import { tempDir } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const LLAMA = "test/fixtures/hf-tiny-lm/llama";

test("LM run with checkpointed layers and a chunked loss, stopped after 3 steps and resumed: adapter and metrics identical to an uninterrupted run", async () => {
  const dir = tempDir();
  const data = join(dir, "text.jsonl");
  const texts = Array.from({ length: 20 }, (_, i) =>
    JSON.stringify({ text: Array.from({ length: 4 + (i % 5) }, (_, j) => `w${6 + ((i * 7 + j) % 60)}`).join(" ") }),
  );
  writeFileSync(data, texts.join("\n") + "\n");
  const cfg = applyConfig(
    DEFAULTS,
    {
      model: LLAMA,
      data,
      construction: "qkv_depth",
      ranks: "2",
      epochs: 2,
      batchSize: 4,
      lr: 1e-2,
      threads: 1,
      saveEvery: 1,
      evalEvery: 2,
      checkpointActivations: true,
      lossChunk: 3,
    },
    "test",
  );
  const whole = join(dir, "whole");
  const cut = join(dir, "cut");
  const full = await runTraining(cfg, whole, { runtime: nodeRuntime });
  let steps = 0;
  const stopped = await runTraining(cfg, cut, { runtime: nodeRuntime, onEvent: (e) => void (e.type === "step" && steps++), shouldStop: () => steps >= 3 });
  assert.ok(stopped.interrupted && stopped.steps === 3 && full.steps > 5, `stopped at ${stopped.steps} of ${full.steps} steps`);
  const resumed = await runTraining(cfg, cut, { runtime: nodeRuntime }, "resume");
  assert.equal(resumed.steps, full.steps);
  for (const f of ["last/adapter_model.safetensors", "best/adapter_model.safetensors"]) {
    assert.ok(readFileSync(join(cut, f)).equals(readFileSync(join(whole, f))), `${f}: identical bytes`);
  }
  assert.equal(readFileSync(join(cut, "metrics.jsonl"), "utf8"), readFileSync(join(whole, "metrics.jsonl"), "utf8"), "every loss and evaluation identical");
});
