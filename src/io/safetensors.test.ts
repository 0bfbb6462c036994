import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FormatError, ShapeError } from "../errors.ts";
import { openSafetensors, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors, type TensorInput } from "./safetensors.ts";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/hf-tiny/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "tenslora-safetensors-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A file built byte by byte from the spec, independent of the writer under test. */
function craft(header: unknown, buffer: Uint8Array | number, headerLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const data = typeof buffer === "number" ? new Uint8Array(buffer) : buffer;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

test("parses a hand-built file: header, metadata, little-endian values", () => {
  // 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0 (IEEE 754, little-endian)
  const data = new Uint8Array([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 7]);
  const file = parseSafetensors(
    craft(
      {
        __metadata__: { format: "pt" },
        x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "U8", shape: [], data_offsets: [8, 9] },
      },
      data,
    ),
    "hand.safetensors",
  );
  assert.deepEqual(file.metadata, { format: "pt" });
  assert.deepEqual([...file.tensors.keys()], ["x", "b"]);
  const x = file.tensors.get("x")!;
  assert.equal(x.dtype, "F32");
  assert.deepEqual(x.shape, [2]);
  assert.deepEqual([...x.bytes], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  assert.deepEqual(file.tensors.get("b")!.shape, []);
  assert.equal(file.tensors.get("b")!.bytes[0], 7);
  assert.equal(new DataView(x.bytes.buffer, x.bytes.byteOffset).getFloat32(4, true), -2);
});

test("write → read round-trips every dtype bit for bit, with metadata", () => {
  const nanWithPayload = new Float32Array(new Uint32Array([0x7fc00123]).buffer)[0];
  const tensors: Record<string, TensorInput> = {
    f64: { dtype: "F64", shape: [2, 2], data: new Float64Array([0.1, -0, Infinity, -1e308]) },
    f32: { dtype: "F32", shape: [3], data: new Float32Array([nanWithPayload, -0, 1e-45]) },
    f16: { dtype: "F16", shape: [4], data: new Uint16Array([0x3c00, 0x7e01, 0x8000, 0x0001]) },
    bf16: { dtype: "BF16", shape: [1, 3], data: new Uint16Array([0x3f80, 0xff81, 0x0001]) },
    i64: {
      dtype: "I64",
      shape: [3],
      data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 42n]),
    },
    i32: { dtype: "I32", shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
    i16: { dtype: "I16", shape: [2], data: new Int16Array([-32768, 32767]) },
    i8: { dtype: "I8", shape: [3], data: new Int8Array([-128, 0, 127]) },
    u8: { dtype: "U8", shape: [3, 1], data: new Uint8Array([0, 128, 255]) },
    bool: { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) },
    empty: { dtype: "F32", shape: [0, 5], data: new Float32Array(0) },
  };
  const path = join(tmp, "all-dtypes.safetensors");
  writeSafetensors(path, tensors, { format: "pt", note: "ünïcode" });
  const file = readSafetensors(path);
  assert.deepEqual(file.metadata, { format: "pt", note: "ünïcode" });
  assert.deepEqual([...file.tensors.keys()].sort(), Object.keys(tensors).sort());
  for (const [key, t] of Object.entries(tensors)) {
    const entry = file.tensors.get(key)!;
    assert.equal(entry.dtype, t.dtype, key);
    assert.deepEqual(entry.shape, t.shape, key);
    assert.deepEqual([...entry.bytes], [...bytesOf(t.data)], key);
  }
  // a Map serialises to the same bytes as the equivalent record
  assert.deepEqual(serializeSafetensors(new Map(Object.entries(tensors)), { format: "pt", note: "ünïcode" }), new Uint8Array(readFileSync(path)));
});

test("serialized layout: space-padded header, largest elements first then by name, aligned", () => {
  const bytes = serializeSafetensors({
    b: { dtype: "F16", shape: [3], data: new Uint16Array([1, 2, 3]) },
    c: { dtype: "F32", shape: [1], data: new Float32Array([3]) },
    a: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
  });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, /^\{.*\} *$/);
  const header = JSON.parse(text);
  assert.deepEqual(header.a.data_offsets, [0, 8]);
  assert.deepEqual(header.c.data_offsets, [8, 12]);
  assert.deepEqual(header.b.data_offsets, [12, 18]);
  assert.equal(bytes.length, 8 + n + 18);
  assert.deepEqual([...bytes.subarray(8 + n + 12)], [1, 0, 2, 0, 3, 0]);
});

test("the fixture checkpoints read with the keys, shapes and dtypes the manifest lists", () => {
  const manifest = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8"));
  for (const model of ["vit_base", "roberta_base"]) {
    const listed: [string, { shape: number[]; dtype: string }][] = manifest[model].checkpoint_keys_in_file_order;
    const file = readSafetensors(join(FIXTURES, manifest[model].model_dir, "model.safetensors"));
    assert.deepEqual(file.metadata, { format: "pt" });
    // the map iterates in file (offset) order, which is the order the manifest records
    assert.deepEqual(
      [...file.tensors.keys()],
      listed.map(([k]) => k),
      model,
    );
    for (const [key, { shape, dtype }] of listed) {
      assert.deepEqual(file.tensors.get(key)!.shape, shape, key);
      assert.equal(file.tensors.get(key)!.dtype, dtype, key);
    }
  }
  const golden = readSafetensors(join(FIXTURES, manifest.vit_base.golden));
  assert.deepEqual([...golden.tensors.keys()].sort(), [...manifest.vit_base.golden_keys].sort());
  assert.deepEqual(golden.tensors.get("pixel_values")!.shape, [2, 3, 32, 32]);
  assert.equal(golden.tensors.get("labels")!.dtype, "I64");
});

test("a file on disk that is missing or corrupt fails with its path in the message", () => {
  const missing = join(tmp, "nope.safetensors");
  assert.throws(
    () => readSafetensors(missing),
    (e: Error) => {
      return e instanceof FormatError && e.message.includes(missing) && /ENOENT/.test(e.message);
    },
  );
  const truncated = join(tmp, "truncated.safetensors");
  const w = { dtype: "F32", shape: [4], data: new Float32Array(4) } as const;
  const whole = serializeSafetensors({ w });
  writeFileSync(truncated, whole.subarray(0, whole.length - 3));
  assert.throws(
    () => readSafetensors(truncated),
    (e: Error) => {
      return e instanceof FormatError && e.message.includes(truncated) && e.message.includes('"w"');
    },
  );
});

const W = { dtype: "F32", shape: [2], data_offsets: [0, 8] };

/** Every corrupt file must fail with a FormatError naming the file and what is wrong. */
const corruptions: [string, Uint8Array, RegExp][] = [
  ["shorter than 8 bytes", new Uint8Array([1, 0, 0]), /3 bytes/],
  ["header length beyond the file", craft({ w: W }, 8, 1000n), /says 1000 bytes/],
  ["absurd header length", craft({ w: W }, 8, 2n ** 64n - 1n), /18446744073709551615/],
  ["header not JSON", craft('{"w": {', 8), /JSON/],
  [
    "header not UTF-8", // {"\xff":1} : a lone 0xff byte is never valid UTF-8
    craft(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 0),
    /must be UTF-8 JSON.*not valid for encoding utf-8/,
  ],
  ["header not an object", craft([W], 8), /JSON object.*an array/],
  ["metadata not strings", craft({ __metadata__: { n: 1 }, w: W }, 8), /"n": number 1/],
  ["entry not an object", craft({ w: 3 }, 8), /"w".*number 3/],
  ["unknown dtype", craft({ w: { ...W, dtype: "F8_E4M3" } }, 8), /"w".*"F8_E4M3".*one of F64/],
  ["negative dim", craft({ w: { ...W, shape: [-2] } }, 8), /"w".*non-negative integers.*\[-2\]/],
  ["fractional dim", craft({ w: { ...W, shape: [2.5] } }, 8), /"w".*\[2\.5\]/],
  ["shape not an array", craft({ w: { ...W, shape: 2 } }, 8), /"w".*shape/],
  ["offsets not integers", craft({ w: { ...W, data_offsets: [0, "8"] } }, 8), /"w".*\[0,"8"\]/],
  ["one offset", craft({ w: { ...W, data_offsets: [8] } }, 8), /"w".*\[begin, end\]/],
  ["begin > end", craft({ w: { ...W, data_offsets: [8, 0] } }, 8), /"w".*begin > end/],
  ["end beyond buffer", craft({ w: { ...W, data_offsets: [0, 16] } }, 8), /"w".*8-byte data/],
  ["size mismatch", craft({ w: { ...W, shape: [3] } }, 8), /"w".*8 bytes.*\[3\] of F32 needs 12/],
  ["overlapping tensors", craft({ w: W, v: { ...W, data_offsets: [4, 12] } }, 12), /"v".*\[4, 12\] overlap tensor "w" \[0, 8\]/],
  ["zero-size tensor inside another", craft({ w: W, z: { dtype: "F32", shape: [0], data_offsets: [4, 4] } }, 8), /"z".*overlap tensor "w"/],
  ["hole between tensors", craft({ w: W, v: { ...W, data_offsets: [12, 20] } }, 20), /"v".*\[8, 12\).*unused/],
  ["hole at the start", craft({ w: { ...W, data_offsets: [4, 12] } }, 12), /"w".*\[0, 4\)/],
  ["trailing bytes", craft({ w: W }, 10), /\[8, 10\).*no tensor.*"w"/],
];

for (const [what, bytes, detail] of corruptions) {
  test(`rejects a corrupt file: ${what}`, () => {
    assert.throws(
      () => parseSafetensors(bytes, "corrupt.safetensors"),
      (e: Error) => {
        assert.ok(e instanceof FormatError, `${e.name}: ${e.message}`);
        assert.match(e.message, /^corrupt\.safetensors: /);
        assert.match(e.message, detail);
        return true;
      },
    );
    // opened for reading tensor by tensor, the file fails the same way before any data is read
    const path = join(tmp, "corrupt.safetensors");
    writeFileSync(path, bytes);
    assert.throws(
      () => openSafetensors(path),
      (e: Error) => e instanceof FormatError && e.message.startsWith(`${path}: `) && detail.test(e.message),
    );
  });
}

test("a file opened tensor by tensor reads each tensor as the whole-file reader does", () => {
  const path = join(FIXTURES, "roberta/model.safetensors");
  const whole = readSafetensors(path);
  const opened = openSafetensors(path);
  try {
    assert.deepEqual([...opened.tensors.keys()], [...whole.tensors.keys()]);
    for (const [key, e] of whole.tensors) {
      const read = opened.tensors.get(key)!.read();
      assert.deepEqual([read.dtype, read.shape], [e.dtype, e.shape], key);
      assert.ok(Buffer.from(read.bytes).equals(Buffer.from(e.bytes)), key);
      assert.equal(read.bytes.byteOffset, 0, `${key}: a fresh buffer, aligned for any dtype`);
    }
  } finally {
    opened.close();
  }
});

test("the writer rejects data that does not fit its dtype or shape", () => {
  const bad = (t: unknown) => () => serializeSafetensors({ w: t as TensorInput });
  assert.throws(bad({ dtype: "F32", shape: [2], data: new Float64Array(2) }), (e: Error) => {
    return e instanceof ShapeError && /"w".*F32.*Float32Array.*Float64Array/.test(e.message);
  });
  assert.throws(bad({ dtype: "F16", shape: [2], data: new Float32Array(2) }), ShapeError);
  assert.throws(bad({ dtype: "F32", shape: [2, 2], data: new Float32Array(3) }), (e: Error) => {
    return e instanceof ShapeError && /"w".*4 elements.*3/.test(e.message);
  });
  assert.throws(bad({ dtype: "F32", shape: [-1], data: new Float32Array(0) }), ShapeError);
  assert.throws(bad({ dtype: "Q4", shape: [1], data: new Uint8Array(1) }), /"Q4".*not supported/);
  assert.throws(
    () => serializeSafetensors({ __metadata__: { dtype: "U8", shape: [], data: new Uint8Array(1) } }),
    (e: Error) => e instanceof FormatError && /reserved/.test(e.message),
  );
  assert.throws(
    () => serializeSafetensors({}, { n: 1 } as unknown as Record<string, string>),
    (e: Error) => e instanceof FormatError && /"n": number 1/.test(e.message),
  );
});

test("writes replace the whole file; a failed one leaves no temporary behind", () => {
  const dir = join(tmp, "atomic");
  mkdirSync(dir);
  const path = join(dir, "w.safetensors");
  const one = { w: { dtype: "F32", shape: [1], data: new Float32Array([1]) } } as const;
  const two = { w: { dtype: "F32", shape: [1], data: new Float32Array([2]) } } as const;
  writeSafetensors(path, one);
  writeSafetensors(path, two);
  assert.deepEqual(readFileSync(path), Buffer.from(serializeSafetensors(two)));
  assert.deepEqual(readdirSync(dir), ["w.safetensors"]);

  // renaming over a folder fails after the temporary was written: it must be cleaned up
  const folder = join(dir, "taken");
  mkdirSync(join(folder, "child"), { recursive: true });
  assert.throws(() => writeSafetensors(folder, one), /EISDIR|ENOTEMPTY|EEXIST/);
  assert.deepEqual(readdirSync(dir).sort(), ["taken", "w.safetensors"]);
  assert.deepEqual(readdirSync(folder), ["child"]);
});
