/**
 * A quantized base through the real CLI on the tiny Llama: `train --base-dtype int4 | f16` records the
 * dtype in the run's config and summary; `eval` takes the run's dtype and reproduces its
 * perplexity, and the adapter also loads on the float32 base; `merge` dequantizes, adds the
 * update and writes float32, saying so; `resume` with another dtype and the unsupported
 * combinations are refused in one line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors } from "../src/io/safetensors.ts";
import { dequantizeMatrix } from "../src/tensor/quantize.ts";
import { quantizeWeight } from "../src/models/quantize-base.ts";
import { loadModel } from "../src/models/load.ts";
import { assertOk, assertUserError, cliAsync } from "./cli-helpers.ts";
import { chatFile, tempDir } from "./make-data.ts";
import { maxAbsDiff } from "./helpers.ts";

const LLAMA = "test/fixtures/hf-tiny-lm/llama";
const dir = tempDir();
const quick = ["--epochs", "2", "--batch-size", "4", "--threads", "1", "--lr", "1e-2"];

for (const dtype of ["int4", "f16"] as const) {
  test(`train --base-dtype ${dtype}: recorded in config and summary; eval reproduces the run's perplexity, the adapter loads on f32; merge writes dequantized float32 + ΔW; resume on f32 is refused`, async () => {
    const data = chatFile(join(dir, `chat-${dtype}.jsonl`), 24);
    const run = join(dir, `run-${dtype}`);
    const lora = ["--model", LLAMA, "--data", data, "--construction", "lora", "--ranks", "2"];
    const r = await cliAsync(["train", ...lora, "--target-modules", "q_proj,v_proj,gate_proj", "--base-dtype", dtype, ...quick, "--out", run]);
    assertOk(r, `train on an ${dtype} base`);
    assert.equal(JSON.parse(readFileSync(join(run, "config.json"), "utf8")).baseDtype, dtype);
    const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
    assert.equal(summary.baseDtype, dtype);
    const evalOn = async (extra: string[]) => {
      const e = await cliAsync(["eval", "--model", LLAMA, "--adapter", join(run, "best"), "--data", data, "--threads", "1", "--json", ...extra]);
      assertOk(e, `eval ${extra.join(" ")}`);
      return JSON.parse(e.stdout).perplexity as number;
    };
    const onRunBase = await evalOn([]);
    assert.ok(
      Math.abs(onRunBase - summary.best.test) < 1e-3 * summary.best.test,
      `eval on the run's ${dtype} base ${onRunBase} = the run's ${summary.best.test}`,
    );
    const onF32 = await evalOn(["--base-dtype", "f32"]);
    assert.ok(Number.isFinite(onF32) && onF32 !== onRunBase, `the ${dtype}-trained adapter runs on the float32 base (${onF32})`);

    const merged = join(dir, `merged-${dtype}`);
    const m = await cliAsync(["merge", "--model", LLAMA, "--adapter", join(run, "best"), "--out", merged]);
    assertOk(m, "merge");
    assert.match(m.stdout, new RegExp(`onto the ${dtype} base dequantized to float32, written as float32`));
    // an un-adapted weight of the merged folder is the quantized base's dequantized weight exactly, an adapted one differs by ΔW
    assert.equal(readSafetensors(join(merged, "model.safetensors")).tensors.get("model.layers.0.mlp.down_proj.weight")!.dtype, "F32");
    const out = loadModel(merged).weights;
    const base = loadModel(LLAMA).weights;
    const deq = (name: string) => {
      const w = base.get(name)!;
      return dequantizeMatrix(quantizeWeight(w, dtype));
    };
    const down = "model.layers.0.mlp.down_proj.weight";
    assert.equal(maxAbsDiff(out.get(down)!.data, deq(down)), 0, `an un-adapted weight is the dequantized ${dtype} weight`);
    const gate = "model.layers.1.mlp.gate_proj.weight";
    const d = maxAbsDiff(out.get(gate)!.data, deq(gate));
    assert.ok(d > 0 && d < 0.5, `adapted gate_proj − dequantized: ${d}`);
    const norm = "model.layers.0.input_layernorm.weight";
    assert.deepEqual(Array.from(out.get(norm)!.data), Array.from(base.get(norm)!.data), "norms stay as loaded");

    const refused = await cliAsync(["train", "--resume", run, "--base-dtype", "f32", "--threads", "1"]);
    assertUserError(refused, new RegExp(`trained on a ${dtype} base, not f32; resume with --base-dtype ${dtype}`), "resume on another base");
  });
}

test("unsupported combinations are one-line errors: full fine-tuning on int4, an encoder on int8", async () => {
  const data = chatFile(join(dir, "chat2.jsonl"), 8);
  const full = await cliAsync(["train", "--model", LLAMA, "--data", data, "--construction", "full", "--base-dtype", "int4", ...quick, "--out", join(dir, "y")]);
  assertUserError(full, /--construction full trains the linear weights, which --base-dtype int4 freezes/, "full on int4");
  const vit = await cliAsync(["train", "--base-dtype", "int8", ...quick, "--out", join(dir, "z")]);
  assertUserError(vit, /--base-dtype int8 is implemented for decoder models/, "embedded ViT on int8");
});
