/**
 * Export to PEFT LoRA (`tenslora export … --to lora`): for TensLoRA adapters of every
 * factorisation and target set on the tiny ViT, the exported folder loads as a LoRA adapter whose
 * logits equal the TensLoRA adapter's (1e-5 relative), in PEFT's file format (config fields, key
 * names, rank_pattern / alpha_pattern where groups differ); --max-rank truncation reports the
 * relative error of the rank-k SVD, checked against the singular values of ΔW itself.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { AdapterOptions } from "../src/adapters/config.ts";
import { loraModules } from "../src/adapters/export.ts";
import { loadAdapter, saveAdapter } from "../src/adapters/format.ts";
import { mergeAdapter } from "../src/adapters/merge.ts";
import { exportAsLora } from "../src/experiments/export.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import type { WeightMap } from "../src/nn/params.ts";
import { matmul } from "../src/tensor/dense.ts";
import { singularValues } from "../src/tensor/linalg.ts";
import { FIXTURES, hfInputs, maxRelDiff, modelRunner, outF32, randomizeAdapter, readGolden, tempDir } from "./helpers.ts";

const run = promisify(execFile);

const CASES: AdapterOptions[] = [
  { construction: "qkv_depth", ranks: [4, 3, 2, 3], scaling: 2 },
  { construction: "att_qkv_depth", ranks: 3, factorization: "tt", targetModules: "all-linear" },
  { construction: "att_qkv", ranks: 3, factorization: "cp", targetModules: ["query", "key", "value", "attention.output.dense"], headLayout: "interleaved" },
  { construction: "qkv", ranks: 2, targetModules: "all-linear", groupRanks: { "intermediate.dense": [5, 4, 1] } },
  { construction: "att_depth", ranks: [4, 3, 2], factorization: "partial_tucker", targetModules: "all-linear" },
  { construction: "lora", ranks: 3, loraAlpha: 6, targetModules: "all-linear" },
];

test("export to LoRA: the exported folder gives the TensLoRA adapter's logits, in PEFT's format", async () => {
  const model = loadModel(join(FIXTURES, "vit"));
  const ctx = modelContext(model);
  const hf = hfInputs(readGolden("vit_base_golden"));
  const headKeys = model.family.headParameters(model.config);
  const head: WeightMap = new Map(headKeys.map((k) => [k, model.weights.get(k)!]));
  const { dir, cleanup } = tempDir("export");
  try {
    for (const [i, opts] of CASES.entries()) {
      const set = randomizeAdapter(createAdapter(model, { ...opts, seed: i }).set, 70 + i, 0.2);
      const src = join(dir, `src${i}`);
      const out = join(dir, `lora${i}`);
      saveAdapter(src, set, ctx, head);
      const result = exportAsLora(src, out, { model: join(FIXTURES, "vit") });
      const sites = set.groups.flatMap((g) => g.grid.flat());
      assert.equal(result.modules.length, sites.length);
      // PEFT's files
      const cfg = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
      assert.equal(cfg.peft_type, "LORA");
      assert.equal(cfg.lora_alpha, cfg.r, "alpha = r: the scaling is folded into lora_B");
      assert.deepEqual([...cfg.target_modules].sort(), sites.map((s) => s.path).sort());
      const ranks = new Map(result.modules.map((m) => [m.path, m.rank]));
      for (const [path, r] of ranks) {
        assert.equal(cfg.rank_pattern[path] ?? cfg.r, r, `${path}: rank`);
        assert.equal(cfg.alpha_pattern[path] ?? cfg.lora_alpha, r, `${path}: alpha`);
      }
      if (new Set(ranks.values()).size > 1) assert.ok(Object.keys(cfg.rank_pattern).length > 0, "groups of other ranks go to rank_pattern");
      const keys = [...readSafetensors(join(out, "adapter_model.safetensors")).tensors.keys()].sort();
      const want = [
        ...sites.flatMap((s) => ["A", "B"].map((x) => `base_model.model.${s.path}.lora_${x}.weight`)),
        ...headKeys.map((k) => `base_model.model.${k}`),
      ].sort();
      assert.deepEqual(keys, want);
      // logits through the exported LoRA equal the TensLoRA adapter's
      const lora = loadAdapter(out, ctx).set;
      assert.equal(lora.config.construction, "lora");
      const logits = async (s: typeof set) => {
        const r = await modelRunner({ model, hf, adapter: s, trainable: "adapter+head" });
        try {
          return outF32(await r.run(hf), "logits");
        } finally {
          r.dispose();
        }
      };
      const [a, b] = [await logits(set), await logits(lora)];
      const rel = maxRelDiff(b, a);
      assert.ok(rel < 1e-5, `${JSON.stringify(opts)}: exported logits differ by ${rel} (relative)`);
      // and the merged weights agree
      const [ma, mb] = [mergeAdapter(model.weights, set), mergeAdapter(model.weights, lora)];
      for (const s of sites) {
        const k = `${s.path}.weight`;
        const da = ma.get(k)!.data.map((v, j) => v - model.weights.get(k)!.data[j]);
        const db = mb.get(k)!.data.map((v, j) => v - model.weights.get(k)!.data[j]);
        assert.ok(maxRelDiff(db, da) < 1e-4, `${k}: merged ΔW differs by ${maxRelDiff(db, da)}`);
      }
    }
  } finally {
    cleanup();
  }
});

test("export --max-rank: each module keeps k directions; the reported error is ‖ΔW − ΔW_k‖/‖ΔW‖ from ΔW's own singular values", () => {
  const model = loadModel(join(FIXTURES, "vit"));
  const set = randomizeAdapter(createAdapter(model, { construction: "qkv_depth", ranks: [6, 5, 2, 3] }).set, 3, 0.3);
  const exact = loraModules(set);
  for (const k of [2, 4, 6, 8]) {
    const cut = loraModules(set, k);
    cut.forEach((m, i) => {
      const full = matmul(exact[i].b, exact[i].a);
      const sigma = singularValues(full);
      const total = sigma.reduce((s, v) => s + v * v, 0);
      const tail = sigma.slice(Math.min(k, 6)).reduce((s, v) => s + v * v, 0);
      assert.equal(m.a.shape[0], Math.min(k, 6));
      assert.ok(
        Math.abs(m.relativeError! - Math.sqrt(tail / total)) < 1e-6,
        `k=${k}: reported ${m.relativeError}, singular values give ${Math.sqrt(tail / total)}`,
      );
      // the truncated pair's own error is what was reported
      const approx = matmul(m.b, m.a);
      let num = 0;
      let den = 0;
      full.data.forEach((v, j) => {
        num += (v - approx.data[j]) ** 2;
        den += v * v;
      });
      assert.ok(Math.abs(Math.sqrt(num / den) - m.relativeError!) < 1e-5, `k=${k}: ‖ΔW − B'A'‖/‖ΔW‖ = ${Math.sqrt(num / den)}`);
      assert.deepEqual(m.b.shape, [exact[i].b.shape[0], Math.min(k, 6)]);
    });
  }
});

test("tenslora export (child process): JSON result, and a one-line error for a bad --to", async () => {
  const model = loadModel(join(FIXTURES, "vit"));
  const { dir, cleanup } = tempDir("export-cli");
  try {
    saveAdapter(join(dir, "a"), randomizeAdapter(createAdapter(model, { construction: "qkv_depth", ranks: 3 }).set, 5, 0.2), modelContext(model));
    const { stdout } = await run(
      process.execPath,
      ["bin/tenslora.js", "export", join(dir, "a"), "--to", "lora", "--out", join(dir, "b"), "--max-rank", "2", "--json"],
      { timeout: 60_000 },
    );
    const r = JSON.parse(stdout);
    assert.equal(r.modules.length, 12);
    assert.ok(r.modules.every((m: { rank: number; relative_error: number }) => m.rank === 2 && m.relative_error > 0 && m.relative_error < 1));
    const bad = await run(process.execPath, ["bin/tenslora.js", "export", join(dir, "a"), "--to", "onnx", "--out", join(dir, "c")]).catch((e) => e);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^tenslora: --to onnx is not supported; export formats: "lora" \(PEFT LoRA\), "gguf"/);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  } finally {
    cleanup();
  }
});
