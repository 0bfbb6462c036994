/**
 * Presets of published tensor methods: `tenslora params --preset NAME --model vit-base` counts
 * equal each method's formula (docs/adapters.md), written out here for ViT-B (d 768, dh 64,
 * H 12, L 12, MLP 3072) at rank r.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type ParamsRow, paramsReport } from "../cli/commands/params.ts";
import { ConfigError } from "../src/errors.ts";

const run = promisify(execFile);
const [d, dh, H, L, ff] = [768, 64, 12, 12, 3072];
const tucker = (sizes: number[], r: number[]) => sizes.reduce((a, n, i) => a + n * r[i], 0) + r.reduce((a, b) => a * b, 1);
const tt = (sizes: number[], bonds: number[]) => sizes.reduce((a, n, k) => a + [1, ...bonds, 1][k] * n * [1, ...bonds, 1][k + 1], 0);
const row = (preset: string, r: number) => paramsReport({ model: "vit-base", preset, ranks: String(r) }).json as ParamsRow;

test("preset formulas on ViT-B", () => {
  for (const r of [4, 8]) {
    // LoRTA: one CP tensor over (in, dh, heads, {q,k,v,o}, depth): R (d + dh + H + 4 + L)
    const lorta = row("lorta", r);
    assert.equal(lorta.params, r * (d + dh + H + 4 + L));
    assert.deepEqual(
      lorta.groups.map((g) => [g.name, g.construction, g.mode_sizes]),
      [["query+key+value+attention.output.dense", "att_qkv_depth", [d, dh, H, 4, L]]],
    );
    // LoTR: per projection (q, k, v) L, R shared over the layers, an r×r core per layer: 2dr + Lr²
    assert.equal(row("lotr", r).params, 3 * (2 * d * r + L * r * r));
    // FacT-TK: Tucker per shape group (q/k/v/o; the MLP's two), ranks min(r, mode size)
    const cap = (sizes: number[]) => sizes.map((n) => Math.min(r, n));
    const groups = [
      [d, d, 4, L],
      [d, ff, 1, L],
      [ff, d, 1, L],
    ];
    assert.equal(
      row("fact_tk", r).params,
      groups.reduce((a, s) => a + tucker(s, cap(s)), 0),
    );
    // FacT-TT: tensor-train per shape group, bond ranks min(r, the unfolding's rank)
    const bonds = (s: number[]) =>
      s.slice(0, -1).map((_, k) =>
        Math.min(
          r,
          s.slice(0, k + 1).reduce((x, y) => x * y, 1),
          s.slice(k + 1).reduce((x, y) => x * y, 1),
        ),
      );
    assert.equal(
      row("fact_tt", r).params,
      groups.reduce((a, s) => a + tt(s, bonds(s)), 0),
    );
  }
  assert.throws(
    () => paramsReport({ model: "vit-base", preset: "loretta" }),
    (e: Error) => e instanceof ConfigError && /unknown preset "loretta"; valid presets: lorta, lotr, fact_tk, fact_tt/.test(e.message),
  );
  assert.throws(
    () => paramsReport({ model: "vit-base", preset: "lorta", construction: "att" }),
    (e: Error) => e instanceof ConfigError && /drop --construction/.test(e.message),
  );
});

test("tenslora params --preset lorta --model vit-base --json, and the issue's all-linear command", async () => {
  const [lorta, all] = await Promise.all([
    run(process.execPath, ["bin/tenslora.js", "params", "--preset", "lorta", "--model", "vit-base", "--ranks", "8", "--json"], { timeout: 60_000 }),
    run(
      process.execPath,
      ["bin/tenslora.js", "params", "--model", "vit-base", "--construction", "qkv_depth", "--target-modules", "all-linear", "--iso-lora", "8", "--json"],
      { timeout: 60_000 },
    ),
  ]);
  assert.equal(JSON.parse(lorta.stdout).params, 8 * (d + dh + H + 4 + L));
  const r = JSON.parse(all.stdout) as ParamsRow;
  assert.deepEqual(
    r.groups.map((g) => g.name),
    ["query+key+value+attention.output.dense", "intermediate.dense", "output.dense"],
  );
  assert.equal(
    r.params,
    r.groups.reduce((a, g) => a + g.params, 0),
  );
  for (const g of r.groups) {
    assert.equal(g.params, tucker(g.mode_sizes, g.ranks), `${g.name}: Tucker formula`);
    assert.ok(g.params <= g.budget!, `${g.name}: ${g.params} within its LoRA r=8 budget ${g.budget}`);
  }
  // each group's budget is LoRA r=8 on its own layers: 8 · Σ (in + out)
  assert.deepEqual(
    r.groups.map((g) => g.budget),
    [8 * 4 * L * 2 * d, 8 * L * (d + ff), 8 * L * (ff + d)],
  );
});
