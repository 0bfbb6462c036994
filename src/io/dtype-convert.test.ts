import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FormatError } from "../errors.ts";
import { Float16Array } from "@petamoriken/float16";
import { Rng } from "../tensor/random.ts";
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToF16Bits, toBigInt64, toFloat32, toInt32 } from "./dtype-convert.ts";
import { parseSafetensors, readSafetensors, serializeSafetensors, type TensorEntry, type TensorInput } from "./safetensors.ts";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/hf-tiny/", import.meta.url));

function entry(t: TensorInput): TensorEntry {
  return parseSafetensors(serializeSafetensors({ t }), "mem").tensors.get("t")!;
}

function _bitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

test("F16 bit patterns convert to the values IEEE binary16 defines", () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125], // 1.0101010101b · 2^-2
    [0x7bff, 65504], // largest finite half
    [0x0400, 2 ** -14], // smallest normal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0001, 2 ** -24], // smallest subnormal
    [0x8001, -(2 ** -24)],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const out = f16BitsToFloat32(new Uint16Array(cases.map(([h]) => h)));
  cases.forEach(([h, v], i) => assert.equal(out[i], v, `0x${h.toString(16)}`));
  const zeros = f16BitsToFloat32(new Uint16Array([0x0000, 0x8000]));
  assert.ok(Object.is(zeros[0], 0) && Object.is(zeros[1], -0));
  const nans = f16BitsToFloat32(new Uint16Array([0x7e00, 0xfc01]));
  assert.ok(Number.isNaN(nans[0]) && Number.isNaN(nans[1]));
  // the NaN payload and sign survive: mantissa 0x001 lands at bit 13 of the float32 mantissa
  assert.equal(new Uint32Array(nans.buffer)[1], 0xff802000);
});

test("float32 values round to the float16 bits @petamoriken/float16 gives: ties to even, subnormals, overflow, NaN", () => {
  const rng = new Rng(3);
  const specials = [0, -0, 1, -2, 65504, 65519.996, 65520, 65536, 1e6, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -26, 1e-10];
  // exact ties: halfway between neighbouring halves, normal (1 + (2k+1)/2048) and subnormal ((2k+1)·2^-25)
  const ties = Array.from({ length: 64 }, (_, k) => [1 + (2 * k + 1) / 2048, (2 * k + 1) * 2 ** -25]).flat();
  // random bit patterns over the whole float32 range, and values at weights' scales
  const patterns = new Float32Array(Uint32Array.from({ length: 1 << 16 }, () => Math.floor(rng.uniform() * 2 ** 32)).buffer);
  const scaled = Array.from({ length: 1 << 16 }, () => rng.normal() * 10 ** Math.floor(rng.uniform() * 12 - 8));
  const values = Float32Array.from([...specials, ...ties, ...ties.map((t) => -t), ...patterns, ...scaled]);
  const ours = float32ToF16Bits(values);
  const truth = new Uint16Array(new Float16Array(values).buffer);
  values.forEach((v, i) => {
    const isNan = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (Number.isNaN(v)) assert.ok(isNan(ours[i]), `NaN → 0x${ours[i].toString(16)}`);
    else assert.equal(ours[i], truth[i], `${v}: 0x${ours[i].toString(16)}, the library 0x${truth[i].toString(16)}`);
  });
});

test("BF16 bit patterns are the top half of a float32", () => {
  const cases: [number, number][] = [
    [0x3f80, 1],
    [0xc000, -2],
    [0x3eab, 0.333984375],
    [0x0001, 2 ** -133], // float32 subnormal
    [0x7f7f, 3.3895313892515355e38], // largest finite bfloat16
    [0x7f80, Infinity],
    [0xff80, -Infinity],
  ];
  const out = bf16BitsToFloat32(new Uint16Array(cases.map(([h]) => h)));
  cases.forEach(([h, v], i) => assert.equal(out[i], v, `0x${h.toString(16)}`));
  const special = bf16BitsToFloat32(new Uint16Array([0x8000, 0x7fc1]));
  assert.ok(Object.is(special[0], -0));
  assert.equal(new Uint32Array(special.buffer)[1], 0x7fc10000);
});

test("toFloat32 converts every float dtype and exact integers", () => {
  const f64 = toFloat32(entry({ dtype: "F64", shape: [3], data: new Float64Array([0.1, -3, 1e300]) }));
  assert.deepEqual([...f64], [Math.fround(0.1), -3, Infinity]);
  const f16 = toFloat32(entry({ dtype: "F16", shape: [2], data: new Uint16Array([0x3c00, 0xc000]) }));
  assert.deepEqual([...f16], [1, -2]);
  const bf16 = toFloat32(entry({ dtype: "BF16", shape: [1], data: new Uint16Array([0x3f80]) }));
  assert.deepEqual([...bf16], [1]);
  const i64 = toFloat32(entry({ dtype: "I64", shape: [3], data: new BigInt64Array([-7n, 2n ** 40n, 0n]) }));
  assert.deepEqual([...i64], [-7, 2 ** 40, 0]);
  const bool = toFloat32(entry({ dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) }));
  assert.deepEqual([...bool], [1, 0]);
});

test("toFloat32 refuses integers float32 would round, naming the tensor", () => {
  const big = entry({ dtype: "I64", shape: [2], data: new BigInt64Array([1n, 2n ** 24n + 1n]) });
  assert.throws(
    () => toFloat32(big, 'ids.safetensors: tensor "n"'),
    (e: Error) => {
      return e instanceof FormatError && /tensor "n".*16777217 at index 1/.test(e.message);
    },
  );
  const i32 = entry({ dtype: "I32", shape: [1], data: new Int32Array([2 ** 31 - 1]) });
  assert.throws(() => toFloat32(i32), FormatError);
});

test("aligned F32 data is a view into the file bytes; unaligned data is copied", () => {
  const w = { dtype: "F32", shape: [2], data: new Float32Array([1.5, -4]) } as const;
  const bytes = serializeSafetensors({ w });
  const aligned = parseSafetensors(bytes, "mem").tensors.get("w")!;
  const view = toFloat32(aligned);
  assert.equal(view.buffer, bytes.buffer);
  assert.deepEqual([...view], [1.5, -4]);

  // the same file one byte into a larger buffer: typed views there would throw a RangeError
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const unaligned = parseSafetensors(shifted.subarray(1), "mem").tensors.get("w")!;
  const copy = toFloat32(unaligned);
  assert.notEqual(copy.buffer, shifted.buffer);
  assert.deepEqual([...copy], [1.5, -4]);
  const n = { dtype: "I64", shape: [1], data: new BigInt64Array([9n]) } as const;
  const i64 = serializeSafetensors({ n });
  const shiftedI64 = new Uint8Array(i64.length + 3);
  shiftedI64.set(i64, 3);
  const parsed = parseSafetensors(shiftedI64.subarray(3), "mem").tensors.get("n")!;
  assert.deepEqual([...toBigInt64(parsed)], [9n]);
});

test("toInt32 and toBigInt64 read integer tensors and refuse what they cannot hold", () => {
  const values = new BigInt64Array([-5n, 0n, 2n ** 31n - 1n]);
  const i64 = entry({ dtype: "I64", shape: [3], data: values });
  assert.deepEqual([...toInt32(i64)], [-5, 0, 2 ** 31 - 1]);
  assert.deepEqual([...toBigInt64(i64)], [-5n, 0n, 2n ** 31n - 1n]);
  const i8 = entry({ dtype: "I8", shape: [2], data: new Int8Array([-128, 127]) });
  assert.deepEqual([...toInt32(i8)], [-128, 127]);
  assert.deepEqual([...toBigInt64(i8)], [-128n, 127n]);
  const u8 = entry({ dtype: "U8", shape: [1], data: new Uint8Array([255]) });
  assert.deepEqual([...toInt32(u8)], [255]);

  const wide = entry({ dtype: "I64", shape: [1], data: new BigInt64Array([2n ** 31n]) });
  assert.throws(
    () => toInt32(wide, "input_ids"),
    (e: Error) => {
      return e instanceof FormatError && /input_ids.*2147483648.*int32 range/.test(e.message);
    },
  );
  const f32 = entry({ dtype: "F32", shape: [1], data: new Float32Array([1]) });
  assert.throws(
    () => toInt32(f32, "labels"),
    (e: Error) => {
      return e instanceof FormatError && /labels.*integer or BOOL dtype, found F32/.test(e.message);
    },
  );
  assert.throws(() => toBigInt64(f32), FormatError);
});

test("fixture values match an independent reader (numpy on the same files)", () => {
  const model = readSafetensors(join(FIXTURES, "vit/model.safetensors"));
  const bias = [-0.07533027976751328, -0.025706535205245018, 0.09166011214256287, -0.008085357025265694, -0.016603609547019005];
  assert.deepEqual([...toFloat32(model.tensors.get("classifier.bias")!)], bias);
  const layerNorm = toFloat32(model.tensors.get("vit.layernorm.weight")!);
  assert.ok(Math.abs(layerNorm.reduce((s, x) => s + x, 0) - 64.8450134396553) < 1e-4);

  const vit = readSafetensors(join(FIXTURES, "vit_base_golden.safetensors"));
  assert.deepEqual([...toInt32(vit.tensors.get("labels")!)], [3, 1]);
  assert.deepEqual([...toFloat32(vit.tensors.get("loss")!)], [Math.fround(2.8239569664001465)]);

  const roberta = readSafetensors(join(FIXTURES, "roberta_base_golden.safetensors"));
  const ids = roberta.tensors.get("input_ids")!;
  assert.equal(ids.dtype, "I64");
  assert.deepEqual(ids.shape, [2, 12]);
  assert.deepEqual([...toInt32(ids)], [0, 94, 29, 20, 87, 37, 98, 54, 59, 38, 86, 2, 0, 79, 69, 20, 67, 80, 61, 2, 1, 1, 1, 1]);
  assert.deepEqual([...toBigInt64(roberta.tensors.get("attention_mask")!)].slice(6), [1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 0n, 0n, 0n, 0n]);
});
