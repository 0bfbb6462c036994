/**
 * A corrupt or mismatched HuggingFace folder fails with a FormatError that names the file, the
 * key and what was expected: truncated weights, a lying header length, overlapping
 * offsets, an unknown dtype, a config field that is missing, a checkpoint key that is missing
 * or mis-shaped.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FormatError } from "../errors.ts";
import { readSafetensors, writeSafetensors, type TensorInput } from "../io/safetensors.ts";
import { loadModel } from "./load.ts";

const FIXTURE = "test/fixtures/hf-tiny";

/** A private copy of a fixture model folder, edited by `edit`, then loaded; returns the error. */
function loadBroken(model: "vit" | "roberta", edit: (dir: string) => void): { err: Error; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "tenslora-load-"));
  try {
    cpSync(join(FIXTURE, model), dir, { recursive: true });
    edit(dir);
    try {
      loadModel(dir);
    } catch (e) {
      assert.ok(e instanceof FormatError, `expected a FormatError, got ${(e as Error).constructor.name}: ${(e as Error).message}`);
      return { err: e, dir };
    }
    assert.fail("loading should have failed");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Replace the header JSON (and its length field), keeping the data buffer. */
function rewriteHeader(file: string, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>) => void): void {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  edit(header);
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, Buffer.from(json), bytes.subarray(8 + n)]));
}

function headerText(file: string): string {
  const bytes = readFileSync(file);
  return bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString("utf8");
}

function includesAll(message: string, parts: string[]): void {
  for (const p of parts) assert.ok(message.includes(p), `the message should name ${JSON.stringify(p)}:\n${message}`);
}

test("a truncated model.safetensors names the file, a tensor that runs past the end and the buffer size", () => {
  let kept = 0;
  const { err, dir } = loadBroken("vit", (d) => {
    const f = join(d, "model.safetensors");
    const bytes = readFileSync(f);
    kept = bytes.length - 1000 - 8 - Number(bytes.readBigUInt64LE(0)); // bytes of the data buffer left
    writeFileSync(f, bytes.subarray(0, bytes.length - 1000));
  });
  includesAll(err.message, [join(dir, "model.safetensors"), "data_offsets", `${kept}-byte data buffer`, "truncated"]);
  // the tensor it names really does end beyond what is left
  const key = /tensor "([^"]+)"/.exec(err.message)?.[1];
  const header = JSON.parse(headerText(join(FIXTURE, "vit", "model.safetensors")));
  assert.ok(key && header[key].data_offsets[1] > kept, `named tensor ${key} should end past byte ${kept}`);
});

test("a header length larger than the file names the file, the length field and the bytes available", () => {
  let size = 0;
  const { err, dir } = loadBroken("vit", (d) => {
    const f = join(d, "model.safetensors");
    const bytes = readFileSync(f);
    size = bytes.length;
    bytes.writeBigUInt64LE(BigInt(size), 0);
    writeFileSync(f, bytes);
  });
  includesAll(err.message, [join(dir, "model.safetensors"), "header length", `says ${size} bytes`, `at most ${size - 8}`]);
});

test("a header length shorter than the header names the file and says the header must be JSON", () => {
  const { err, dir } = loadBroken("roberta", (d) => {
    const f = join(d, "model.safetensors");
    const bytes = readFileSync(f);
    bytes.writeBigUInt64LE(bytes.readBigUInt64LE(0) - 16n, 0);
    writeFileSync(f, bytes);
  });
  includesAll(err.message, [join(dir, "model.safetensors"), "header must be UTF-8 JSON"]);
});

test("overlapping data offsets name the file and both tensors", () => {
  const pair = ["vit.encoder.layer.0.attention.attention.query.weight", "vit.encoder.layer.0.attention.attention.key.weight"];
  let names: string[] = [];
  const { err, dir } = loadBroken("vit", (d) =>
    rewriteHeader(join(d, "model.safetensors"), (h) => {
      // the later tensor is moved onto the earlier one (same size): an overlap, found before the hole it leaves
      names = [...pair].sort((x, y) => h[x].data_offsets[0] - h[y].data_offsets[0]);
      h[names[1]].data_offsets = [...h[names[0]].data_offsets];
    }),
  );
  includesAll(err.message, [join(dir, "model.safetensors"), `"${names[0]}"`, `"${names[1]}"`, "overlap"]);
});

test("an unknown dtype names the file, the tensor and the supported dtypes", () => {
  const key = "classifier.bias";
  const { err, dir } = loadBroken("vit", (d) =>
    rewriteHeader(join(d, "model.safetensors"), (h) => {
      h[key].dtype = "F8_E4M3";
    }),
  );
  includesAll(err.message, [join(dir, "model.safetensors"), `"${key}"`, "F8_E4M3", "F32, F16, BF16"]);
});

for (const [model, field] of [
  ["vit", "hidden_size"],
  ["vit", "patch_size"],
  ["roberta", "vocab_size"],
  ["roberta", "max_position_embeddings"],
] as const) {
  test(`config.json without "${field}" (${model}) names the file, the field and the expected type`, () => {
    const { err, dir } = loadBroken(model, (d) => {
      const f = join(d, "config.json");
      const cfg = JSON.parse(readFileSync(f, "utf8"));
      delete cfg[field];
      writeFileSync(f, JSON.stringify(cfg));
    });
    includesAll(err.message, [join(dir, "config.json"), `"${field}"`, "must be an integer", "missing"]);
  });
}

/** Rewrite model.safetensors through `edit` on its tensors (as F32). */
function rewriteTensors(file: string, edit: (m: Map<string, TensorInput>) => void): void {
  const m = new Map<string, TensorInput>();
  for (const [k, e] of readSafetensors(file).tensors) m.set(k, { dtype: "F32", shape: e.shape, data: new Float32Array(e.bytes.slice().buffer) });
  edit(m);
  writeSafetensors(file, m);
}

test("a checkpoint without a key names the file, the key and its expected shape", () => {
  const key = "roberta.encoder.layer.2.attention.self.key.bias";
  const { err, dir } = loadBroken("roberta", (d) => rewriteTensors(join(d, "model.safetensors"), (m) => m.delete(key)));
  includesAll(err.message, [join(dir, "model.safetensors"), "missing", `"${key}" [64]`]);
});

test("a mis-shaped key names the file, the key, the expected and the found shape", () => {
  const key = "vit.encoder.layer.1.intermediate.dense.weight";
  const { err, dir } = loadBroken("vit", (d) =>
    rewriteTensors(join(d, "model.safetensors"), (m) => m.set(key, { dtype: "F32", shape: [64, 128], data: new Float32Array(64 * 128) })),
  );
  includesAll(err.message, [join(dir, "model.safetensors"), `"${key}"`, "expected [128, 64]", "found [64, 128]"]);
});

test("the fixture folders themselves load (the edits above are what breaks them)", () => {
  for (const m of ["vit", "roberta"]) assert.ok(loadModel(join(FIXTURE, m)).weights.size > 50, `${m} fixture`);
});
