/**
 * TENSLORA_EP=webgpu in Node (onnxruntime-node's Dawn). Dawn needs a Vulkan device: Debian's
 * Mesa lavapipe is refused here ("Vulkan shaderUniform*ArrayDynamicIndexing required"), Chromium's
 * SwiftShader (/usr/lib/chromium) through the system Vulkan loader (libvulkan1) is accepted: one training step and the op
 * table run on it. Child processes, because Dawn reads VK_ICD_FILENAMES when ONNX Runtime loads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { SWIFTSHADER_DEP, VULKAN_LOADER_DEP, needs } from "./system-deps.ts";

const SWIFTSHADER = SWIFTSHADER_DEP.file;
// Dawn dlopens the Vulkan loader, which Debian's chromium does not depend on
const skip = needs(SWIFTSHADER_DEP, VULKAN_LOADER_DEP);

function child(args: string[], env: Record<string, string>, timeout = 240_000) {
  const r = spawnSync(process.execPath, ["--import", "tsx", ...args], { env: { ...process.env, ...env }, encoding: "utf8", timeout });
  assert.equal(r.status, 0, `${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

test("TENSLORA_EP=webgpu with no GPU adapter warns once and trains on the CPU", async () => {
  const r = child(["test/webgpu-step.ts"], { TENSLORA_EP: "webgpu", VK_ICD_FILENAMES: "/nonexistent/icd.json" });
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  const warnings = r.stderr.split("\n").filter((l) => l.includes("found no GPU adapter"));
  assert.equal(warnings.length, 1, `one warning for the two sessions:\n${r.stderr}`);
  assert.match(warnings[0], /running on the CPU/);
  assert.equal(out.loss[0], out.loss[1], "the same CPU kernels");
  assert.equal(out.maxGradRelDiff, 0);
});

test("one training step on WebGPU (SwiftShader) gives the CPU's loss and gradients", { skip }, async () => {
  const r = child(["test/webgpu-step.ts"], { TENSLORA_EP: "webgpu", VK_ICD_FILENAMES: SWIFTSHADER });
  assert.doesNotMatch(r.stderr, /found no GPU adapter/, "Dawn found SwiftShader");
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(out.providers, ["webgpu", "cpu"]);
  assert.ok(Math.abs(out.loss[0] - out.loss[1]) <= 1e-5 * Math.abs(out.loss[1]), `loss ${out.loss}`);
  assert.ok(out.maxGradRelDiff < 1e-4, `gradients differ by ${out.maxGradRelDiff} of their scale`);
  assert.ok(out.maxGradRelDiff > 0, "the gradients are bit-identical to the CPU's: the GPU's kernels did not run");
});

test("the op table passes on WebGPU (SwiftShader): float32 rows' forward and gradients on the GPU", { skip }, async () => {
  // float64 and integer nodes have no WebGPU kernels and run on the CPU, as ONNX Runtime assigns them
  const env: NodeJS.ProcessEnv = { ...process.env, TENSLORA_EP: "webgpu", VK_ICD_FILENAMES: SWIFTSHADER };
  delete env.NODE_TEST_CONTEXT; // a test file of its own, not a subtest of this run
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", "test/ops.table.test.ts"], {
    env,
    encoding: "utf8",
    timeout: 400_000,
  });
  assert.doesNotMatch(r.stderr, /found no GPU adapter/, "Dawn found SwiftShader");
  assert.equal(r.status, 0, `the op table on WebGPU failed:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /ℹ fail 0/);
});
