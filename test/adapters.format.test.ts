/**
 * The adapter folder format and configuration errors: files that do
 * not fit the model fail naming the key, the expected and the found shape; bad configuration
 * fails naming the valid choices; LoRA folders carry PEFT's fields and key names (checked
 * against a folder PEFT itself wrote) and survive PEFT → load → save → load unchanged.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CONSTRUCTIONS, modelShape } from "../src/adapters/constructions.ts";
import { normalizeRanks } from "../src/adapters/methods.ts";
import { type ModelContext, loadAdapter, saveAdapter } from "../src/adapters/format.ts";
import { ConfigError, ShapeError, TargetNotFoundError } from "../src/errors.ts";
import { readSafetensors, writeSafetensors, type TensorInput } from "../src/io/safetensors.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { type LoadedModel, loadModel } from "../src/models/load.ts";
import { vit } from "../src/models/vit/model.ts";
import type { WeightMap } from "../src/nn/params.ts";
import { FIXTURES, hfInputs, modelRunner, outF32, randomizeAdapter, readGolden, sameBits, tempDir } from "./helpers.ts";

const tinyVit = () => loadModel(join(FIXTURES, "vit"));

/** A ViT context with other sizes, from config alone (no weights needed to check a file). */
function otherVitContext(over: Record<string, unknown>): ModelContext {
  const raw = { ...JSON.parse(readFileSync(join(FIXTURES, "vit", "config.json"), "utf8")), ...over };
  const config = vit.parseConfig(raw, "other/config.json");
  return modelContext({ family: vit, config, weights: new Map(), dir: "other", rawConfig: raw, newHead: false } as LoadedModel);
}

function throwsWith(fn: () => unknown, type: new (...a: never[]) => Error, parts: (string | RegExp)[]): string {
  let message = "";
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e.constructor.name}: ${e.message}`);
    message = e.message;
    return true;
  });
  for (const p of parts) {
    const ok = typeof p === "string" ? message.includes(p) : p.test(message);
    assert.ok(ok, `the message should contain ${p}:\n${message}`);
  }
  return message;
}

/** Save an adapter for the tiny ViT, edit its files, and load it back. */
function saveEditLoad(
  opts: Parameters<typeof createAdapter>[1],
  edit: { config?: (c: Record<string, unknown>) => void; tensors?: (m: Map<string, TensorInput>) => void },
  ctxFor?: ModelContext,
): () => unknown {
  const model = tinyVit();
  const ctx = modelContext(model);
  const { set } = createAdapter(model, opts);
  const { dir, cleanup } = tempDir("format");
  saveAdapter(dir, set, ctx);
  if (edit.config) {
    const f = join(dir, "adapter_config.json");
    const c = JSON.parse(readFileSync(f, "utf8"));
    edit.config(c);
    writeFileSync(f, JSON.stringify(c));
  }
  if (edit.tensors) {
    const f = join(dir, "adapter_model.safetensors");
    const m = new Map<string, TensorInput>();
    for (const [k, e] of readSafetensors(f).tensors) m.set(k, { dtype: "F32", shape: e.shape, data: new Float32Array(e.bytes.slice().buffer) });
    edit.tensors(m);
    writeSafetensors(f, m);
  }
  return () => {
    try {
      return loadAdapter(dir, ctxFor ?? ctx);
    } finally {
      cleanup();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// files that disagree with the model

test("ranks in the config that disagree with the stored tensors: the error names each key, expected and found shape", () => {
  const load = saveEditLoad(
    { construction: "qkv_depth", ranks: [4, 3, 2, 3] },
    {
      config: (c) => {
        c.ranks = [4, 3, 2, 2];
        delete c.groups;
      },
    },
  );
  throwsWith(load, ShapeError, ['"tenslora.0.core": expected shape [4,3,2,2], found [4,3,2,3]', '"tenslora.0.factors.3": expected shape [4,2], found [4,3]']);
});

test("a construction that disagrees with the stored tensors: missing and mis-shaped keys are all listed", () => {
  const load = saveEditLoad(
    { construction: "qkv_depth", ranks: [4, 3, 2, 3] },
    {
      config: (c) => {
        c.construction = "att_qkv_depth";
        c.ranks = [4, 3, 2, 2, 3];
        delete c.groups;
      },
    },
  );
  throwsWith(load, ShapeError, [
    'missing "tenslora.0.factors.4" (expected [4,3])',
    '"tenslora.0.factors.1": expected shape [16,3], found [64,3]',
    "att_qkv_depth",
  ]);
});

test("a stored tensor of the wrong shape names the key, the expected and the found shape", () => {
  const load = saveEditLoad(
    { construction: "att", ranks: [4, 3, 2] },
    { tensors: (m) => m.set("tenslora.5.factors.2", { dtype: "F32", shape: [3, 2], data: new Float32Array(6) }) },
  );
  throwsWith(load, ShapeError, ['"tenslora.5.factors.2": expected shape [4,2], found [3,2]']);
});

test("an unexpected tensor is reported, not ignored", () => {
  const load = saveEditLoad(
    { construction: "depth", ranks: 2 },
    { tensors: (m) => m.set("tenslora.3.core", { dtype: "F32", shape: [2, 2, 2], data: new Float32Array(8) }) },
  );
  throwsWith(load, ShapeError, ['unexpected "tenslora.3.core" [2,2,2]']);
});

test("a TensLoRA file made for a model with other layers or hidden size fails naming both values", () => {
  const layers = saveEditLoad({ construction: "qkv_depth", ranks: 2 }, {}, otherVitContext({ num_hidden_layers: 2 }));
  throwsWith(layers, ShapeError, ["num_layers = 4", "the model has 2"]);
  const hidden = saveEditLoad({ construction: "qkv_depth", ranks: 2 }, {}, otherVitContext({ hidden_size: 48, num_attention_heads: 4 }));
  throwsWith(hidden, ShapeError, ["hidden_size = 64", "the model has 48"]);
});

test("a LoRA file for another hidden size names each key with the expected and the found shape", () => {
  const load = saveEditLoad({ construction: "lora", ranks: 4 }, {}, otherVitContext({ hidden_size: 48, num_attention_heads: 4 }));
  throwsWith(load, ShapeError, ['"base_model.model.vit.encoder.layer.0.attention.attention.query.lora_A.weight": expected shape [4,48], found [4,64]']);
});

// ---------------------------------------------------------------------------------------------
// bad configuration

test("bad configuration fails with a ConfigError naming the valid choices", () => {
  const model = tinyVit();
  const create = (o: Record<string, unknown>) => () =>
    createAdapter(model, { construction: "qkv_depth", ranks: 2, ...o } as Parameters<typeof createAdapter>[1]);
  throwsWith(create({ construction: "tucker5" }), ConfigError, ['unknown construction "tucker5"', `valid constructions: ${CONSTRUCTIONS.join(", ")}`]);
  for (const bad of [0, -1, 1.5]) {
    throwsWith(create({ ranks: [4, 3, bad, 2] }), ConfigError, ["mode `qkv`", "integer ≥ 1", `got ${bad}`]);
    throwsWith(create({ construction: "lora", ranks: bad }), ConfigError, ['"lora"', "integer ≥ 1", `got ${bad}`]);
  }
  throwsWith(create({ ranks: [4, 3] }), ConfigError, ['"qkv_depth" has 4 modes (in, out, qkv, depth)', "give one rank or 4 ranks", "got 2"]);
  throwsWith(create({ construction: "lora", ranks: [4, 4] }), ConfigError, ["takes one rank r"]);
  throwsWith(create({ factorization: "cp", ranks: [4, 3, 2, 2] }), ConfigError, ["CP takes one rank R"]);
  throwsWith(create({ factorization: "tensor-ring" }), ConfigError, ["valid factorizations: tucker, cp, tt"]);
  throwsWith(create({ headLayout: "columns" }), ConfigError, ["valid layouts: head_major, interleaved"]);
  throwsWith(create({ init: "xavier" }), ConfigError, ["valid inits: orthogonal, normal, kaiming_uniform"]);
  // heads that do not divide the hidden size: in the adapter's shape, and in a model config
  const shape = modelShape({ dIn: 64, dOut: 64, heads: 5, layers: 4, projections: ["query", "key", "value"] });
  throwsWith(() => normalizeRanks("att", shape, 2), ConfigError, ["heads must divide dOut", "dOut = 64, heads = 5"]);
  assert.doesNotThrow(() => normalizeRanks("qkv", shape, 2), "only att constructions split heads");
  throwsWith(() => otherVitContext({ num_attention_heads: 5 }), ConfigError, ["hidden_size 64 is not divisible by num_attention_heads 5"]);
});

test("a target module that matches nothing fails listing the available names", () => {
  const model = tinyVit();
  throwsWith(() => createAdapter(model, { construction: "qkv_depth", ranks: 2, targetModules: ["query", "q_proj"] }), TargetNotFoundError, [
    '"q_proj"',
    "match no linear layer",
    "Available names: query, key, value, attention.output.dense, intermediate.dense, output.dense",
  ]);
});

// ---------------------------------------------------------------------------------------------
// PEFT compatibility

const PEFT_FIELDS = ["peft_type", "r", "lora_alpha", "target_modules", "lora_dropout", "bias", "modules_to_save", "base_model_name_or_path", "task_type"];

for (const name of ["vit", "roberta"] as const) {
  test(`${name}: the LoRA adapter_config.json we write has PEFT's fields and the safetensors PEFT's key names`, () => {
    const model = loadModel(join(FIXTURES, name));
    const peftDir = join(FIXTURES, `${name}_lora`);
    const peftCfg = JSON.parse(readFileSync(join(peftDir, "adapter_config.json"), "utf8"));
    const { set } = createAdapter(model, { construction: "lora", ranks: 4, loraAlpha: 8, targetModules: peftCfg.target_modules });
    const headKeys = model.family.headParameters(model.config);
    const head: WeightMap = new Map(headKeys.map((k) => [k, model.weights.get(k)!]));
    const { dir, cleanup } = tempDir("peft");
    try {
      saveAdapter(dir, set, modelContext(model), head);
      const ours = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
      for (const f of PEFT_FIELDS) {
        assert.ok(f in peftCfg, `PEFT's own file has ${f}`);
        assert.ok(f in ours, `our adapter_config.json lacks ${f}`);
      }
      assert.equal(ours.peft_type, "LORA");
      assert.equal(ours.r, 4);
      assert.equal(ours.lora_alpha, 8);
      assert.deepEqual(ours.target_modules, peftCfg.target_modules);
      assert.equal(ours.lora_dropout, 0);
      assert.equal(ours.bias, "none");
      assert.equal(typeof ours.base_model_name_or_path, "string");
      assert.deepEqual(ours.modules_to_save, ["classifier"]);
      assert.equal(ours.task_type, name === "roberta" ? "SEQ_CLS" : null);
      // the same LoRA key names as the file PEFT wrote, plus the head as modules_to_save
      const keys = [...readSafetensors(join(dir, "adapter_model.safetensors")).tensors.keys()];
      const peftKeys = [...readSafetensors(join(peftDir, "adapter_model.safetensors")).tensors.keys()];
      assert.deepEqual(keys.filter((k) => k.includes(".lora_")).sort(), [...peftKeys].sort());
      assert.deepEqual(keys.filter((k) => !k.includes(".lora_")).sort(), headKeys.map((k) => `base_model.model.${k}`).sort());
    } finally {
      cleanup();
    }
  });

  test(`${name}: PEFT folder → load → save → load gives the same tensors and identical logits`, async () => {
    const model = loadModel(join(FIXTURES, name));
    const ctx = modelContext(model);
    const first = loadAdapter(join(FIXTURES, `${name}_lora`), ctx).set;
    const { dir, cleanup } = tempDir("peft-rt");
    try {
      saveAdapter(dir, first, ctx);
      const second = loadAdapter(dir, ctx).set;
      assert.deepEqual(second.config, first.config);
      for (const [k, t] of first.tensors) assert.ok(sameBits(second.tensors.get(k)!.data, t.data), k);
      const hf = hfInputs(readGolden(`${name}_base_golden`));
      const r = await modelRunner({ model, hf, adapter: first, trainable: "adapter+head" });
      try {
        const a = outF32(await r.run(hf, { params: first.tensors }), "logits");
        const b = outF32(await r.run(hf, { params: second.tensors }), "logits");
        assert.ok(
          a.every((v, i) => v === b[i]),
          "the re-saved adapter must give identical logits",
        );
        // and the adapter is not a no-op: other LoRA values give other logits
        const c = outF32(await r.run(hf, { params: randomizeAdapter(first, 5, 0.3).tensors }), "logits");
        assert.ok(
          c.some((v, i) => v !== a[i]),
          "other LoRA values must give other logits",
        );
      } finally {
        r.dispose();
      }
    } finally {
      cleanup();
    }
  });
}
