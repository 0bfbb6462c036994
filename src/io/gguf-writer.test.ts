/**
 * The GGUF writer, read back by @huggingface/gguf's parser: metadata of every type, tensor
 * descriptors (shape innermost first, type, aligned offsets) and tensor bytes decoded from the
 * GGUF spec's layouts (F32, F16 through the IEEE half decoder, Q8_0 blocks as d · q).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLQuantizationType, gguf as parseGguf } from "@huggingface/gguf";
import { ConfigError } from "../errors.ts";
import { f16BitsToFloat32 } from "./dtype-convert.ts";
import { GGUF_ALIGNMENT, type GgufTensor, type GgufValue, Q8_0_BLOCK, gguf, writeGguf } from "./gguf-writer.ts";

const tmp = mkdtempSync(join(tmpdir(), "tenslora-gguf-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const random = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.3 + i * 1.91) * (1 + (i % 5)));

test("GGUF writer: metadata, tensor descriptors and F32 / F16 / Q8_0 bytes as the spec lays them out", async () => {
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str("llama")],
    ["general.type", gguf.str("model")],
    ["llama.block_count", gguf.u32(3)],
    ["llama.rope.freq_base", gguf.f32(10000.5)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(false)],
    ["tokenizer.ggml.tokens", gguf.strings(["<s>", "héllo", ""])],
    ["tokenizer.ggml.token_type", gguf.i32s([3, 1, -1])],
    ["tokenizer.ggml.scores", gguf.f32s([0.5, -1.25, 0])],
    // past the writer's first 64 KiB of header
    ["tokenizer.ggml.merges", gguf.strings(Array.from({ length: 20000 }, (_, i) => `t${i} x`))],
  ]);
  const tensors: GgufTensor[] = [
    { name: "a.f32", shape: [3, 5], data: random(15, 1), type: "F32" },
    { name: "b.f16", shape: [7], data: random(7, 2), type: "F16" },
    { name: "c.q8", shape: [2, 64], data: random(128, 3), type: "Q8_0" },
  ];
  tensors[2].data.fill(0, 32, 64); // an all-zero block has d = 0
  const path = join(tmp, "m.gguf");
  writeGguf(path, meta, tensors);
  const parsed = await parseGguf(path, { allowLocalFile: true });
  const md = parsed.metadata as Record<string, unknown>;
  assert.equal(md.version, 3);
  assert.equal(md.tensor_count, 3n);
  assert.equal(md.kv_count, BigInt(meta.size));
  assert.equal(md["general.architecture"], "llama");
  assert.equal(md["llama.block_count"], 3);
  assert.equal(md["llama.rope.freq_base"], Math.fround(10000.5));
  assert.equal(md["tokenizer.ggml.add_bos_token"], false);
  assert.deepEqual(md["tokenizer.ggml.tokens"], ["<s>", "héllo", ""]);
  assert.deepEqual(md["tokenizer.ggml.token_type"], [3, 1, -1]);
  assert.deepEqual(md["tokenizer.ggml.scores"], [0.5, -1.25, 0]);
  assert.equal((md["tokenizer.ggml.merges"] as string[])[19999], "t19999 x");
  assert.deepEqual(
    parsed.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype]),
    [
      ["a.f32", [5, 3], GGMLQuantizationType.F32],
      ["b.f16", [7], GGMLQuantizationType.F16],
      ["c.q8", [64, 2], GGMLQuantizationType.Q8_0],
    ],
  );
  const file = readFileSync(path);
  const base = Number(parsed.tensorDataOffset);
  assert.equal(base % GGUF_ALIGNMENT, 0);
  const at = (i: number) => base + Number(parsed.tensorInfos[i].offset);
  parsed.tensorInfos.forEach((_, i) => assert.equal(at(i) % GGUF_ALIGNMENT, 0, "tensor data aligned"));
  // F32: the values
  const f32 = new Float32Array(file.buffer.slice(file.byteOffset + at(0), file.byteOffset + at(0) + 60));
  assert.deepEqual([...f32], [...tensors[0].data]);
  // F16: each value within half a unit in the last place of 11 significant bits
  const f16 = f16BitsToFloat32(new Uint16Array(file.buffer.slice(file.byteOffset + at(1), file.byteOffset + at(1) + 14)));
  tensors[1].data.forEach((x, i) => assert.ok(Math.abs(f16[i] - x) <= Math.abs(x) * 2 ** -11, `F16 ${x} → ${f16[i]}`));
  // Q8_0: [f16 d, 32 × int8] per block; x ≈ d·q within d/2 (plus d's own rounding), max |q| = 127
  const view = new DataView(file.buffer, file.byteOffset + at(2));
  for (let b = 0; b < 4; b++) {
    const d = f16BitsToFloat32(new Uint16Array([view.getUint16(b * 34, true)]))[0];
    const x = tensors[2].data.subarray(b * Q8_0_BLOCK, (b + 1) * Q8_0_BLOCK);
    const amax = Math.max(...x.map(Math.abs));
    assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 2 ** -11, `block ${b}: d ${d} for max |x| ${amax}`);
    let top = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      const q = view.getInt8(b * 34 + 2 + i);
      top = Math.max(top, Math.abs(q));
      assert.ok(Math.abs(d * q - x[i]) <= d * 0.5 + Math.abs(x[i]) * 2 ** -10, `block ${b}[${i}]: ${x[i]} → ${d}·${q}`);
    }
    assert.equal(top, amax === 0 ? 0 : 127);
  }
});

test("GGUF writer refuses what llama.cpp could not read: Q8_0 rows that are not whole blocks, out-of-range integers, repeated names", () => {
  const path = join(tmp, "bad.gguf");
  assert.throws(() => writeGguf(path, new Map(), [{ name: "w", shape: [2, 48], data: new Float32Array(96), type: "Q8_0" }]), ConfigError);
  assert.throws(() => writeGguf(path, new Map([["k", gguf.u32(-1)]]), []), /out of range/);
  assert.throws(() => writeGguf(path, new Map(), [{ name: "w", shape: [3], data: new Float32Array(2), type: "F32" }]), /holds 3 values/);
  const t: GgufTensor = { name: "w", shape: [1], data: new Float32Array(1), type: "F32" };
  assert.throws(() => writeGguf(path, new Map(), [t, t]), /listed twice/);
});
