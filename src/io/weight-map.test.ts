import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, FormatError } from "../errors.ts";
import { transpose2d, WeightMapper, type WeightRule } from "./weight-map.ts";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/hf-tiny/", import.meta.url));
const MANIFEST = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8"));

/** The fixture ViT checkpoint's key → shape list, as the manifest records it. */
function vitCheckpointShapes(): Map<string, { shape: number[] }> {
  const listed: [string, { shape: number[] }][] = MANIFEST.vit_base.checkpoint_keys_in_file_order;
  return new Map(listed.map(([key, { shape }]) => [key, { shape }]));
}

/** A made-up model: HF names without "vit.", attention as "attn.<q|k|v>", an [in, out] head. */
const vitRules: WeightRule[] = [
  { exact: "classifier.weight", to: "head.weight", transform: transpose2d },
  { exact: "classifier.bias", to: "head.bias" },
  {
    pattern: /vit\.encoder\.layer\.(\d+)\.attention\.attention\.(?<p>query|key|value)\.(.*)/,
    to: "layers.$1.attn.$<p>.$3",
  },
  { pattern: /vit\.encoder\.layer\.(\d+)\.(.*)/, to: "layers.$1.$2" },
  { prefix: "vit.", to: "" },
];

/** The parameters that made-up model declares, written out from the ViT config by hand. */
function vitModelShapes(d = 64, ff = 128, layers = 4, labels = 5): Map<string, number[]> {
  const shapes = new Map<string, number[]>([
    ["head.weight", [d, labels]],
    ["head.bias", [labels]],
    ["embeddings.cls_token", [1, 1, d]],
    ["embeddings.position_embeddings", [1, 17, d]],
    ["embeddings.patch_embeddings.projection.weight", [d, 3, 8, 8]],
    ["embeddings.patch_embeddings.projection.bias", [d]],
    ["layernorm.weight", [d]],
    ["layernorm.bias", [d]],
  ]);
  for (let l = 0; l < layers; l++) {
    for (const p of ["query", "key", "value"]) {
      shapes.set(`layers.${l}.attn.${p}.weight`, [d, d]);
      shapes.set(`layers.${l}.attn.${p}.bias`, [d]);
    }
    shapes.set(`layers.${l}.attention.output.dense.weight`, [d, d]);
    shapes.set(`layers.${l}.attention.output.dense.bias`, [d]);
    shapes.set(`layers.${l}.intermediate.dense.weight`, [ff, d]);
    shapes.set(`layers.${l}.intermediate.dense.bias`, [ff]);
    shapes.set(`layers.${l}.output.dense.weight`, [d, ff]);
    shapes.set(`layers.${l}.output.dense.bias`, [d]);
    for (const n of ["layernorm_before", "layernorm_after"]) {
      shapes.set(`layers.${l}.${n}.weight`, [d]);
      shapes.set(`layers.${l}.${n}.bias`, [d]);
    }
  }
  return shapes;
}

function errorOf(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FormatError, String(e));
    return e;
  }
  assert.fail("expected a FormatError");
}

test("rules rename as declared, the first match wins, unmatched keys keep their name", () => {
  const mapper = new WeightMapper([
    { ignore: /pooler\..+/ },
    { ignore: "embeddings.position_ids" },
    { exact: "a.b", to: "x" },
    { prefix: "a.", to: "alpha." },
    { pattern: /enc\.(\d+)\.(q|k)/g, to: "blocks.$1.attn_$2" },
  ]);
  assert.equal(mapper.map("pooler.dense.weight"), "ignore");
  assert.equal(mapper.map("embeddings.position_ids"), "ignore");
  assert.deepEqual(mapper.map("xpooler.dense"), { target: "xpooler.dense" });
  assert.deepEqual(mapper.map("a.b"), { target: "x", transform: undefined });
  assert.deepEqual(mapper.map("a.c.d"), { target: "alpha.c.d", transform: undefined });
  // whole-key match: a trailing suffix does not match, and the g flag does not make it stateful
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(mapper.map("enc.12.k"), { target: "blocks.12.attn_k", transform: undefined });
  }
  assert.deepEqual(mapper.map("enc.12.k.bias"), { target: "enc.12.k.bias" });
});

test("maps the fixture ViT checkpoint's 72 keys onto a made-up model's parameters", () => {
  const mapper = new WeightMapper(vitRules);
  const plan = mapper.apply(vitCheckpointShapes(), vitModelShapes(), "vit/model.safetensors");
  assert.equal(plan.weights.size, 72);
  assert.deepEqual(plan.ignored, []);
  assert.deepEqual(plan.weights.get("layers.3.attn.value.bias"), {
    source: "vit.encoder.layer.3.attention.attention.value.bias",
    shape: [64],
    transform: undefined,
  });
  const fc2 = plan.weights.get("layers.0.output.dense.weight")!;
  assert.equal(fc2.source, "vit.encoder.layer.0.output.dense.weight");
  const head = plan.weights.get("head.weight")!;
  assert.deepEqual([head.source, head.shape, head.transform], ["classifier.weight", [64, 5], transpose2d]);
});

test("reports missing, unexpected, mis-shaped and doubly-mapped keys together in one error", () => {
  const checkpoint = new Map([
    ["enc.0.w", { shape: [4, 8] }], // fits
    ["enc.0.b", { shape: [3] }], // mis-shaped: model wants [4]
    ["enc.1.w", { shape: [8, 4] }], // fits after the transpose
    ["enc.1.extra", { shape: [2] }], // unexpected
    ["legacy.w", { shape: [4, 8] }], // a second source for blocks.0.w
    ["pooler.w", { shape: [9] }], // ignored
  ]);
  const expected = new Map([
    ["blocks.0.w", [4, 8]],
    ["blocks.0.b", [4]],
    ["blocks.1.w", [4, 8]],
    ["blocks.1.b", [4]], // missing
    ["norm.g", [4]], // missing
  ]);
  const mapper = new WeightMapper([
    { ignore: /pooler\..*/ },
    { exact: "legacy.w", to: "blocks.0.w" },
    { pattern: /enc\.1\.w/, to: "blocks.1.w", transform: transpose2d },
    { prefix: "enc.", to: "blocks." },
  ]);
  const e = errorOf(() => mapper.apply(checkpoint, expected, "tiny/model.safetensors"));
  const m = e.message;
  assert.match(m, /^tiny\/model\.safetensors: .*5 parameters.* 5 do not:/);
  assert.match(m, /missing \(2\):\n {4}"blocks\.1\.b" \[4\]: no checkpoint key maps to it\n {4}"norm\.g" \[4\]/);
  assert.match(m, /unexpected \(1\):\n {4}"enc\.1\.extra" → "blocks\.1\.extra": the model has no such parameter/);
  assert.match(m, /mis-shaped \(1\):\n {4}"enc\.0\.b" → "blocks\.0\.b": expected \[4\], found \[3\]/);
  assert.match(m, /mapped twice \(1\):\n {4}"blocks\.0\.w" comes from both "enc\.0\.w" and "legacy\.w"/);
  assert.doesNotMatch(m, /pooler/);
  assert.match(m, /WeightMapper/);
});

test("the transformed shape is what gets checked; a transform that does not fit is reported", () => {
  const mapper = new WeightMapper([{ pattern: /(.*)\.weight/, to: "$1.w", transform: transpose2d }]);
  const e = errorOf(() =>
    mapper.apply(
      new Map([
        ["a.weight", { shape: [2, 3] }],
        ["b.weight", { shape: [5] }],
      ]),
      new Map([
        ["a.w", [2, 3]],
        ["b.w", [5]],
      ]),
      "t.safetensors",
    ),
  );
  assert.match(e.message, /"a\.weight" → "a\.w": expected \[2, 3\], found \[3, 2\] after transpose2d of \[2, 3\]/);
  assert.match(e.message, /"b\.weight" → "b\.w": transpose2d needs a 2-D tensor, found shape \[5\]/);
  assert.doesNotMatch(e.message, /missing/);
});

test("a config that does not match the checkpoint lists the mismatches, long lists cut", () => {
  const e = errorOf(() => new WeightMapper(vitRules).apply(vitCheckpointShapes(), vitModelShapes(32), "vit/model"));
  // every tensor with a hidden-size dim: all 72 but the 4 intermediate biases and classifier.bias
  assert.match(e.message, /^vit\/model: .*72 parameters.* but 67 do not:\n {2}mis-shaped \(67\):/);
  assert.match(e.message, /"classifier\.weight" → "head\.weight": expected \[32, 5\], found \[64, 5\]/);
  assert.match(e.message, /… and 47 more/);
  assert.equal(e.message.split("\n").filter((l) => l.startsWith('    "')).length, 20);
});

test("load applies each rule's transform to the data", () => {
  // [[1, 2, 3], [4, 5, 6]] transposed is [[1, 4], [2, 5], [3, 6]]
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const bias = new Float32Array([7, 8]);
  const mapper = new WeightMapper([
    { exact: "fc.weight", to: "fc.w", transform: transpose2d },
    { exact: "fc.bias", to: "fc.b" },
  ]);
  const loaded = new Map(
    mapper.load(
      new Map([
        ["fc.weight", { shape: [2, 3], data }],
        ["fc.bias", { shape: [2], data: bias }],
      ]),
      new Map([
        ["fc.w", [3, 2]],
        ["fc.b", [2]],
      ]),
      "fc.safetensors",
    ),
  );
  const transposed = new Float32Array([1, 4, 2, 5, 3, 6]);
  assert.deepEqual(loaded.get("fc.w"), { shape: [3, 2], data: transposed });
  assert.equal(loaded.get("fc.b")!.data, bias);
});

test("a rule with no kind or two kinds is a ConfigError naming the rule", () => {
  assert.throws(
    () => new WeightMapper([{ exact: "a", to: "b" }, { exact: "c", prefix: "d", to: "e" } as WeightRule]),
    (e: Error) => e instanceof ConfigError && /rule 1 .*found exact and prefix/.test(e.message),
  );
  assert.throws(
    () => new WeightMapper([{ to: "b" } as unknown as WeightRule]),
    (e: Error) => e instanceof ConfigError && /rule 0 .*found none/.test(e.message),
  );
  assert.throws(
    () => new WeightMapper([{ prefix: "a" } as unknown as WeightRule]),
    (e: Error) => e instanceof ConfigError && /"to" must be a string/.test(e.message),
  );
});
