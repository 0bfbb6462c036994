/**
 * Bad adapter configurations are typed one-line errors that name the offending value and the fix:
 * a null config or ranks, absurd ranks (the message names the mode size), a broken or
 * catastrophic regex (RE2: matching cannot hang), a string scaling, an empty target list (the
 * message lists the model's linear layers); and through the CLI, one `tenslora:` line, exit 1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { type AdapterOptions, planAdapter } from "../src/adapters/config.ts";
import { loadAdapter, saveAdapter } from "../src/adapters/format.ts";
import type { LinearSite } from "../src/nn/sites.ts";
import { ConfigError, FormatError, TargetNotFoundError, type TensLoRAError } from "../src/errors.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { FIXTURES, tempDir } from "./helpers.ts";

const run = promisify(execFile);
const model = loadModel(join(FIXTURES, "vit"));
const sites = model.family.linearSites(model.config);

function fails(o: unknown, type: new (...a: never[]) => TensLoRAError, parts: string[], on: LinearSite[] = sites): void {
  assert.throws(
    () => planAdapter(o as AdapterOptions, on),
    (e: Error) => {
      assert.ok(e instanceof type, `${JSON.stringify(o)}: expected ${type.name}, got ${e.constructor.name}: ${e.message}`);
      assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
      for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" should contain "${p}"`);
      return true;
    },
  );
}

test("bad adapter options: one-line typed errors naming the value and the fix", () => {
  fails(null, ConfigError, ["adapter options must be an object", "null"]);
  fails({ construction: "qkv", ranks: null }, ConfigError, ["ranks must be a positive integer", "got null"]);
  fails({ construction: "qkv", ranks: 1e9 }, ConfigError, ["rank 1000000000 on mode `in` (size 64)", "exceeds every mode size", "use a rank ≤ 64"]);
  fails({ construction: "qkv_depth", ranks: [100000, 8, 3, 4] }, ConfigError, ["rank 100000 on mode `in` (size 64)"]);
  fails({ construction: "qkv", ranks: 1e9, factorization: "cp" }, ConfigError, ["CP rank 1000000000 exceeds", "use R ≤"]);
  fails({ construction: "qkv", ranks: 1e9, factorization: "tt" }, ConfigError, ["bond rank 1000000000", "use a rank ≤"]);
  fails({ construction: "lora", ranks: 1e9 }, ConfigError, ["rank 1000000000 exceeds both sides", "use r ≤ 64"]);
  fails({ construction: "qkv", ranks: 2, targetModules: "(" }, ConfigError, ['regex "(" is not a valid regular expression', "escape"]);
  fails({ construction: "qkv", ranks: 2, targetModules: ["/(/"] }, ConfigError, ['regex "(" is not a valid regular expression']);
  fails({ construction: "qkv", ranks: 2, scaling: "1" }, ConfigError, ['scaling must be a number (e.g. 2 or 0.5), got the string "1"']);
  fails({ construction: "qkv", ranks: 2, targetModules: [] }, TargetNotFoundError, [
    "target_modules is empty",
    "Available names: query, key, value, attention.output.dense",
  ]);
  fails({ construction: "qkv", ranks: 2, targetModules: "nothing.*" }, TargetNotFoundError, ['"nothing.*" select no linear layer', "Available names: query"]);
  fails({ construction: "qkv", ranks: 2, layersToTransform: [9] }, ConfigError, ["block 9 does not exist", "blocks 0…3"]);
  fails({ construction: "att", ranks: 2, targetModules: ["intermediate.dense"] }, ConfigError, ["none of the targets (intermediate.dense)", 'use "lora"']);
  fails({ construction: "qkv", ranks: 2, factorization: "tt", gqa: "avg" }, ConfigError, ['unknown GQA mode "avg"', "valid modes: mean, separate"]);
  fails({ construction: "att_qkv_depth", ranks: [2, 2, 2], factorization: "tt" }, ConfigError, [
    "4 bond ranks (in-dh, dh-heads, heads-qkv, qkv-depth)",
    "got 3",
  ]);
});

test("a target_modules regex that backtracks exponentially in a backtracking engine matches at once (RE2)", () => {
  const long: LinearSite[] = [{ path: `${"a".repeat(5000)}.query`, name: "query", layer: 0, inFeatures: 8, outFeatures: 8 }];
  // (a+)+b on 5000 a's without a b: 2^5000 paths for a backtracking engine
  fails({ construction: "lora", ranks: 2, targetModules: "(a+)+b" }, TargetNotFoundError, ["select no linear layer"], long);
  const hit = planAdapter({ construction: "lora", ranks: 2, targetModules: "(a+)+\\.query" }, long);
  assert.equal(hit.groups[0].grid[0][0].path, long[0].path);
});

test("an adapter_config.json that is null, or has a string scaling, is refused in one line", () => {
  const ctx = modelContext(model);
  const { dir, cleanup } = tempDir("cfg-errors");
  try {
    saveAdapter(dir, createAdapter(model, { construction: "qkv_depth", ranks: 2 }).set, ctx);
    writeFileSync(join(dir, "adapter_config.json"), "null");
    assert.throws(
      () => loadAdapter(dir, ctx),
      (e: Error) => e instanceof FormatError && /must hold a JSON object, found null/.test(e.message),
    );
    saveAdapter(dir, createAdapter(model, { construction: "qkv_depth", ranks: 2 }).set, ctx);
    const cfg = JSON.parse(JSON.stringify({ peft_type: "TENSLORA", construction: "qkv_depth", ranks: 2, scaling: "1", target_modules: ["query"] }));
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(cfg));
    assert.throws(
      () => loadAdapter(dir, ctx),
      (e: Error) => e instanceof ConfigError && /got the string "1"/.test(e.message) && !/got 1\b/.test(e.message),
    );
  } finally {
    cleanup();
  }
});

test("the CLI prints one tenslora: line and exits 1 for absurd ranks and a broken regex", async () => {
  const cli = (...args: string[]) =>
    run(process.execPath, ["bin/tenslora.js", ...args], { timeout: 60_000 }).then(
      () => ({ code: 0, stderr: "" }),
      (e) => e,
    );
  const [ranks, regex] = await Promise.all([
    cli("params", "--model", "vit-base", "--construction", "qkv_depth", "--ranks", "100000,8,3,12"),
    cli("params", "--model", "vit-base", "--construction", "qkv", "--target-modules", "/(/"),
  ]);
  for (const [r, pattern] of [
    [ranks, /^tenslora: construction "qkv_depth": rank 100000 on mode `in` \(size 768\)/],
    [regex, /^tenslora: target_modules regex "\(" is not a valid regular expression/],
  ] as const) {
    assert.equal(r.code, 1);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
