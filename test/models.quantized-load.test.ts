/**
 * Loading a checkpoint with a quantized base reads it tensor by tensor and quantizes each linear
 * weight before the next is read (so the float32 model never exists whole). The result must be
 * bit-identical to quantizing the fully loaded float32 model: the same codes, the same scales,
 * the same float32 tensors elsewhere — for a single file and for BF16 shards; an F16 checkpoint
 * loaded as f16 holds the file's own bits.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../src/errors.ts";
import { readSafetensors, writeSafetensors, type TensorInput } from "../src/io/safetensors.ts";
import { loadModel, type LoadedModel } from "../src/models/load.ts";
import { quantizableWeights, withBaseDType } from "../src/models/quantize-base.ts";
import { type QuantizedMatrix, quantizeMatrix } from "../src/tensor/quantize.ts";
import { Float16Array } from "@petamoriken/float16";
import { LM_FIXTURES } from "./lm-golden.ts";

const tmp = mkdtempSync(join(tmpdir(), "tenslora-quantized-load-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const bytesOf = (a: Float32Array | Uint8Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
/** The shape of a quantized matrix, and its arrays (codes, then scales where it has them). */
const layout = (q: QuantizedMatrix) => (q.bits === 16 ? [q.bits, q.rows, q.cols] : [q.bits, q.block, q.rows, q.cols]);
const arrays = (q: QuantizedMatrix) => (q.bits === 16 ? [q.codes] : [q.codes, q.scales]);

/** Every quantized matrix and every float tensor of `a` equals `b`'s byte for byte. */
function assertSameModel(a: LoadedModel, b: LoadedModel): void {
  assert.equal(a.baseDtype, b.baseDtype);
  assert.deepEqual([...a.quantized!.keys()].sort(), [...b.quantized!.keys()].sort());
  for (const [k, q] of b.quantized!) {
    const got = a.quantized!.get(k)!;
    assert.deepEqual(layout(got), layout(q), k);
    const theirs = arrays(got);
    arrays(q).forEach((a, i) => assert.ok(Buffer.from(bytesOf(theirs[i])).equals(Buffer.from(bytesOf(a))), `${k}: ${i ? "scales" : "codes"}`));
  }
  assert.deepEqual([...a.weights.keys()].sort(), [...b.weights.keys()].sort());
  for (const [k, t] of b.weights) assert.ok(Buffer.from(bytesOf(a.weights.get(k)!.data)).equals(Buffer.from(bytesOf(t.data))), k);
}

for (const name of ["llama", "qwen2"] as const) {
  for (const dtype of ["f16", "int8", "int4"] as const) {
    test(`${name} ${dtype}: quantizing while loading equals quantizing the loaded float32 model, bit for bit`, () => {
      const dir = join(LM_FIXTURES, name);
      const streamed = loadModel(dir, { baseDtype: dtype });
      const whole = withBaseDType(loadModel(dir), dtype);
      assertSameModel(streamed, whole);
      const linear = quantizableWeights(streamed);
      assert.equal(streamed.quantized!.size, linear.length);
      assert.ok(
        linear.every((k) => !streamed.weights.has(k)),
        "no float32 copy of a quantized weight is kept",
      );
    });
  }
}

test("a BF16 checkpoint in shards quantizes each tensor from its BF16 values", () => {
  const src = join(LM_FIXTURES, "llama");
  const dir = join(tmp, "llama-bf16-shards");
  mkdirSync(dir);
  const file = readSafetensors(join(src, "model.safetensors"));
  const shards: Record<string, Record<string, TensorInput>> = { "model-1.safetensors": {}, "model-2.safetensors": {} };
  const weightMap: Record<string, string> = {};
  const bf16AsF32 = new Map<string, Float32Array>();
  for (const [key, e] of file.tensors) {
    const bits = new Uint32Array(e.bytes.slice().buffer);
    // BF16 is the high half of a float32's bits (truncated here); read back it is exactly this float32
    const bf16 = Uint16Array.from(bits, (b) => b >>> 16);
    bf16AsF32.set(key, new Float32Array(Uint32Array.from(bf16, (h) => h << 16).buffer));
    const shard = /layers\.1\./.test(key) ? "model-2.safetensors" : "model-1.safetensors";
    shards[shard][key] = { dtype: "BF16", shape: e.shape, data: bf16 };
    weightMap[key] = shard;
  }
  for (const [shard, tensors] of Object.entries(shards)) writeSafetensors(join(dir, shard), tensors);
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  copyFileSync(join(src, "config.json"), join(dir, "config.json"));

  const streamed = loadModel(dir, { baseDtype: "int4" });
  assertSameModel(streamed, withBaseDType(loadModel(dir), "int4"));
  // independent of the loader: the BF16 values decoded by hand, then quantized
  const q = streamed.quantized!.get("model.layers.1.mlp.down_proj.weight")!;
  assert.ok(q.bits === 4);
  const truth = quantizeMatrix(bf16AsF32.get("model.layers.1.mlp.down_proj.weight")!, q.rows, q.cols, 4);
  assert.ok(Buffer.from(q.codes).equals(Buffer.from(truth.codes)));
  assert.deepEqual(q.scales, truth.scales);
  // BF16 → float16 rounds once, from the BF16 value: the library's conversion is the truth
  const half = loadModel(dir, { baseDtype: "f16" }).quantized!.get("model.layers.1.mlp.down_proj.weight")!;
  assert.deepEqual(half.codes, new Uint16Array(new Float16Array(bf16AsF32.get("model.layers.1.mlp.down_proj.weight")!).buffer));
});

test("an F16 checkpoint loaded as f16 holds the file's float16 bits, and float32 elsewhere", () => {
  const src = join(LM_FIXTURES, "qwen2");
  const dir = join(tmp, "qwen2-f16");
  mkdirSync(dir);
  const stored = new Map<string, Uint16Array>();
  const tensors: Record<string, TensorInput> = {};
  for (const [key, e] of readSafetensors(join(src, "model.safetensors")).tensors) {
    const half = new Float16Array(new Float32Array(e.bytes.slice().buffer));
    stored.set(key, new Uint16Array(half.buffer));
    tensors[key] = { dtype: "F16", shape: e.shape, data: stored.get(key)! };
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  copyFileSync(join(src, "config.json"), join(dir, "config.json"));
  const model = loadModel(dir, { baseDtype: "f16" });
  assert.equal(model.quantized!.size, quantizableWeights(model).length);
  for (const [k, q] of model.quantized!) assert.deepEqual(q.codes, stored.get(k), k);
  const norm = "model.layers.0.input_layernorm.weight";
  assert.deepEqual(model.weights.get(norm)!.data, new Float32Array(new Float16Array(stored.get(norm)!.buffer)));
});

test("an encoder refuses a quantized base at load, naming the fix", () => {
  assert.throws(
    () => loadModel("test/fixtures/hf-tiny/vit", { baseDtype: "int4" }),
    (e: Error) => e instanceof ConfigError && /--base-dtype int4 .*decoder.*use --base-dtype f32/.test(e.message),
  );
});
