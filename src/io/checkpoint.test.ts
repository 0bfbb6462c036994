import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FormatError } from "../errors.ts";
import { loadCheckpointTensors, openShardedSafetensors, readJsonFile, readShardedIndex } from "./checkpoint.ts";
import { readSafetensors, writeSafetensors, type TensorInput } from "./safetensors.ts";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/hf-tiny/", import.meta.url));
const MANIFEST = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8"));
const tmp = mkdtempSync(join(tmpdir(), "tenslora-checkpoint-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function folder(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  return dir;
}

function formatError(pattern: RegExp): (e: Error) => boolean {
  return (e) => e instanceof FormatError && pattern.test(e.message);
}

/**
 * The RoBERTa fixture's tensors in two shards (keys before "roberta.encoder.layer.2" in the
 * first) and an index; `index` may move a key to another shard in the index only.
 */
function writeShards(dir: string, index = (_key: string, shard: string) => shard): void {
  const file = readSafetensors(join(FIXTURES, "roberta/model.safetensors"));
  const shards: Record<string, Record<string, TensorInput>> = {
    "s-1.safetensors": {},
    "s-2.safetensors": {},
  };
  const weightMap: Record<string, string> = {};
  for (const [key, e] of file.tensors) {
    const shard = key < "roberta.encoder.layer.2" ? "s-1.safetensors" : "s-2.safetensors";
    const data = new Float32Array(e.bytes.slice().buffer);
    shards[shard][key] = { dtype: "F32", shape: e.shape, data };
    weightMap[key] = index(key, shard);
  }
  for (const [name, tensors] of Object.entries(shards)) writeSafetensors(join(dir, name), tensors);
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 597964 }, weight_map: weightMap }));
}

test("loads the fixture ViT folder as float32 with the manifest's shapes", () => {
  const tensors = loadCheckpointTensors(join(FIXTURES, "vit"));
  const listed: [string, { shape: number[] }][] = MANIFEST.vit_base.checkpoint_keys_in_file_order;
  assert.equal(tensors.size, listed.length);
  for (const [key, { shape }] of listed) {
    const t = tensors.get(key)!;
    assert.deepEqual(t.shape, shape, key);
    assert.equal(t.dtype, "F32");
    assert.equal(
      t.data.length,
      shape.reduce((n, s) => n * s, 1),
      key,
    );
  }
  // value from numpy on the same file
  assert.equal(tensors.get("classifier.bias")!.data[2], Math.fround(0.09166011214256287));
});

test("a sharded folder loads to exactly the single-file checkpoint", () => {
  const dir = folder("sharded");
  writeShards(dir);
  const index = readShardedIndex(dir);
  assert.deepEqual(index.shards, ["s-1.safetensors", "s-2.safetensors"]);
  assert.deepEqual(index.metadata, { total_size: 597964 });
  assert.equal(index.weightMap.get("classifier.dense.bias"), "s-1.safetensors");
  const last = "roberta.encoder.layer.3.output.dense.weight";
  assert.equal(index.weightMap.get(last), "s-2.safetensors");

  const sharded = loadCheckpointTensors(dir);
  const single = loadCheckpointTensors(join(FIXTURES, "roberta"));
  assert.equal(sharded.size, 73);
  assert.deepEqual([...sharded.keys()].sort(), [...single.keys()].sort());
  for (const [key, t] of single) {
    assert.deepEqual(sharded.get(key)!.shape, t.shape, key);
    assert.deepEqual(sharded.get(key)!.data, t.data, key);
  }
});

test("tensors in the wrong shard, absent or unindexed are all reported in one error", () => {
  const dir = folder("bad-shards");
  writeShards(dir, (key, shard) => {
    if (key === "classifier.dense.bias") return "s-2.safetensors"; // lives in s-1
    return shard;
  });
  // an indexed key no shard holds, and a shard tensor the index lacks
  const indexPath = join(dir, "model.safetensors.index.json");
  const index = JSON.parse(readFileSync(indexPath, "utf8"));
  index.weight_map["ghost.weight"] = "s-1.safetensors";
  delete index.weight_map["classifier.out_proj.bias"];
  writeFileSync(indexPath, JSON.stringify(index));

  assert.throws(
    () => openShardedSafetensors(dir),
    (e: Error) => {
      assert.ok(e instanceof FormatError);
      const m = e.message;
      assert.match(m, /bad-shards\/model\.safetensors\.index\.json: each tensor must .* 3 are not/);
      assert.match(m, /absent \(1\):\n {4}"ghost\.weight" is not in s-1\.safetensors/);
      assert.match(m, /"classifier\.dense\.bias" is in s-1\.safetensors but the index places it in s-2/);
      assert.match(m, /"classifier\.out_proj\.bias" is in s-1\.safetensors but not in the index/);
      return true;
    },
  );
});

test("an index must name shard files beside it, in a well-formed weight_map", () => {
  const escaping = folder("escaping");
  writeFileSync(join(escaping, "model.safetensors.index.json"), JSON.stringify({ weight_map: { w: "../elsewhere/model.safetensors" } }));
  assert.throws(() => loadCheckpointTensors(escaping), formatError(/weight_map\["w"\].*same folder.*"\.\.\/elsewhere/));

  const noMap = folder("no-map");
  writeFileSync(join(noMap, "model.safetensors.index.json"), JSON.stringify({ metadata: {} }));
  assert.throws(() => readShardedIndex(noMap), formatError(/index\.json: expected an object with a "weight_map"/));

  const missingShard = folder("missing-shard");
  writeFileSync(join(missingShard, "model.safetensors.index.json"), JSON.stringify({ weight_map: { w: "gone.safetensors" } }));
  assert.throws(() => loadCheckpointTensors(missingShard), formatError(/gone\.safetensors cannot be read \(ENOENT\)/));
});

test("half-precision checkpoints load as float32", () => {
  const dir = folder("half");
  writeSafetensors(join(dir, "model.safetensors"), {
    h: { dtype: "F16", shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x3555]) },
    b: { dtype: "BF16", shape: [1, 2], data: new Uint16Array([0x3f80, 0xc040]) },
  });
  const tensors = loadCheckpointTensors(dir);
  assert.deepEqual(tensors.get("h"), {
    shape: [3],
    dtype: "F16",
    data: new Float32Array([1, -2, 0.333251953125]),
  });
  // 0xc040 = -1.1b · 2^1
  const b = tensors.get("b");
  assert.deepEqual(b, { shape: [1, 2], dtype: "BF16", data: new Float32Array([1, -3]) });
});

test("a folder without safetensors weights says what it holds", () => {
  const dir = folder("bin-only");
  writeFileSync(join(dir, "pytorch_model.bin"), "");
  writeFileSync(join(dir, "config.json"), "{}");
  assert.throws(() => loadCheckpointTensors(dir), formatError(/bin-only: .*model\.safetensors or .*index\.json.*\[config\.json, pytorch_model\.bin\]/));
  assert.throws(() => loadCheckpointTensors(join(tmp, "absent")), formatError(/absent: .*it is missing/));
});

test("readJsonFile parses, and names the file when it is missing or not JSON", () => {
  const config = readJsonFile(join(FIXTURES, "vit/config.json"), "model config") as {
    hidden_size: number;
    model_type: string;
  };
  assert.equal(config.hidden_size, 64);
  assert.equal(config.model_type, "vit");

  const missing = join(tmp, "nowhere/config.json");
  assert.throws(
    () => readJsonFile(missing, "model config"),
    (e: Error) => {
      const rule = `model config ${missing} cannot be read (ENOENT)`;
      return e instanceof FormatError && e.message.startsWith(rule);
    },
  );
  const broken = join(tmp, "broken.json");
  writeFileSync(broken, '{"hidden_size": 64,');
  assert.throws(
    () => readJsonFile(broken, "model config"),
    (e: Error) => {
      return e instanceof FormatError && e.message.includes(`model config ${broken} must be valid JSON`) && e.cause instanceof SyntaxError;
    },
  );
});
