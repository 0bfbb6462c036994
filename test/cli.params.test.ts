/**
 * `tenslora params` and `tenslora analyze`, run as a user runs them (`node bin/tenslora.js …`
 * in a child process), and the model presets behind `--model`. Known values from the issue and
 * the paper (LoRA r=8 on ViT-B: 442,368; qkv_depth all 8: 16,504; att_qkv_depth all 8: 39,640);
 * every other count against the formulas of docs/adapters.md written out here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { saveAdapter } from "../src/adapters/format.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { MODEL_PRESETS, modelShapeFor } from "../src/pipeline/presets.ts";
import type { WeightMap } from "../src/nn/params.ts";
import { type ParamsOptions, type ParamsRow, paramsReport } from "../cli/commands/params.ts";
import { analyzeAdapter } from "../cli/commands/analyze.ts";
import { ConfigError } from "../src/errors.ts";
import { numericalRank } from "../src/adapters/analysis.ts";
import { FIXTURES, goldenF32, planSet, randomizeAdapter, readGolden, tempDir } from "./helpers.ts";

const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // 180 s: five of these start at once, and on a loaded 2-core machine each tsx start alone can take a minute
  try {
    const { stdout, stderr } = await run(process.execPath, ["bin/tenslora.js", ...args], { timeout: 180_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

const json = async (...args: string[]) => {
  const r = await cli(...args, "--json");
  assert.equal(r.code, 0, `tenslora ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

/** docs/adapters.md §5's formulas (d_in = d_out = d, dh = d/H, 3 projections, L layers). */
function formula(c: string, r: number[], d: number, H: number, L: number): number {
  const dh = d / H;
  const pr = r.reduce((a, b) => a * b, 1);
  const table: Record<string, () => number> = {
    lora: () => 3 * L * r[0] * (d + d),
    att: () => 3 * L * (d * r[0] + dh * r[1] + H * r[2] + pr),
    qkv: () => L * (d * r[0] + d * r[1] + 3 * r[2] + pr),
    depth: () => 3 * (d * r[0] + d * r[1] + L * r[2] + pr),
    att_qkv: () => L * (d * r[0] + dh * r[1] + H * r[2] + 3 * r[3] + pr),
    att_depth: () => 3 * (d * r[0] + dh * r[1] + H * r[2] + L * r[3] + pr),
    qkv_depth: () => d * r[0] + d * r[1] + 3 * r[2] + L * r[3] + pr,
    att_qkv_depth: () => d * r[0] + dh * r[1] + H * r[2] + 3 * r[3] + L * r[4] + pr,
  };
  return table[c]();
}

test("presets and HF config.json give the model shapes (d, heads, layers)", () => {
  const want: Record<string, [number, number, number]> = {
    "vit-base": [768, 12, 12],
    "vit-large": [1024, 16, 24],
    "vit-huge": [1280, 16, 32],
    "roberta-base": [768, 12, 12],
    "roberta-large": [1024, 16, 24],
  };
  // the decoder presets are counted in test/models.lm-presets.test.ts
  assert.deepEqual(
    Object.keys(MODEL_PRESETS)
      .filter((k) => /^(vit|roberta)-/.test(k))
      .sort(),
    Object.keys(want).sort(),
  );
  for (const [name, [d, H, L]] of Object.entries(want)) {
    assert.deepEqual(modelShapeFor(name), { dIn: d, dOut: d, heads: H, layers: L, projections: ["query", "key", "value"] }, name);
  }
  assert.deepEqual(modelShapeFor(join(FIXTURES, "vit", "config.json")), { dIn: 64, dOut: 64, heads: 4, layers: 4, projections: ["query", "key", "value"] });
  assert.equal(modelShapeFor(join(FIXTURES, "roberta")).layers, 4, "a folder holding config.json works too");
  const { dir, cleanup } = tempDir("preset");
  try {
    // a family this project does not run still has a shape to count parameters on
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "gpt_neox", hidden_size: 4096, num_attention_heads: 32, num_hidden_layers: 32 }));
    assert.deepEqual(modelShapeFor(join(dir, "config.json"), ["q_proj", "k_proj", "v_proj"]), {
      dIn: 4096,
      dOut: 4096,
      heads: 32,
      layers: 32,
      projections: ["q_proj", "k_proj", "v_proj"],
    });
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "gpt_neox", hidden_size: 4096, num_hidden_layers: 32 }));
    assert.throws(() => modelShapeFor(join(dir, "config.json")), /"num_attention_heads" must be an integer ≥ 1, but it is missing/);
  } finally {
    cleanup();
  }
  assert.throws(() => modelShapeFor("vit-bas"), /neither a preset nor an existing file; use one of vit-base, vit-large/);
});

test("tenslora params (child process): the issue's command, the known values in the table, text, errors", async () => {
  const [issue, table, text, badRanks, badModel] = await Promise.all([
    cli("params", "--model", "vit-base", "--construction", "qkv_depth", "--ranks", "8,8,3,12", "--json"),
    cli("params", "--model", "vit-base", "--ranks", "8", "--json"),
    cli("params", "--model", "vit-base", "--construction", "att_qkv_depth", "--ranks", "8"),
    cli("params", "--model", "vit-base", "--construction", "qkv_depth", "--ranks", "8,8"),
    cli("params", "--model", "vit-bas"),
  ]);
  assert.equal(issue.code, 0, issue.stderr);
  const row = JSON.parse(issue.stdout);
  assert.deepEqual([row.construction, row.ranks, row.params], ["qkv_depth", [8, 8, 3, 12], formula("qkv_depth", [8, 8, 3, 12], 768, 12, 12)]);
  assert.ok(Math.abs(row.lora_equivalent_rank - row.params / 55_296) < 1e-12, "LoRA-equivalent rank = params / params of LoRA r=1");

  assert.equal(table.code, 0, table.stderr);
  const rows = JSON.parse(table.stdout) as { construction: string; ranks: number[]; params: number }[];
  const by = Object.fromEntries(rows.map((r) => [r.construction, r]));
  assert.deepEqual(
    rows.map((r) => r.construction),
    ["lora", "att", "qkv", "depth", "att_qkv", "att_depth", "qkv_depth", "att_qkv_depth"],
  );
  assert.equal(by.lora.params, 442_368);
  assert.equal(by.qkv_depth.params, 16_504);
  assert.equal(by.att_qkv_depth.params, 39_640);
  for (const r of rows) assert.equal(r.params, formula(r.construction, r.ranks, 768, 12, 12), r.construction);

  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /ranks in=8 dh=8 heads=8 qkv=8 depth=8/);
  assert.match(text.stdout, /parameters 39,640 /);
  assert.match(text.stderr, /^tenslora: warning: rank 8 on mode `qkv` \(size 3\) adds parameters without expressiveness/m);

  for (const [r, message] of [
    [badRanks, /^tenslora: construction "qkv_depth" has 4 modes \(in, out, qkv, depth\): give one rank or 4 ranks, got 2/],
    [badModel, /^tenslora: model "vit-bas" is neither a preset nor an existing file; use one of vit-base/],
  ] as const) {
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
});

const report = (o: Partial<ParamsOptions>) => paramsReport({ model: "vit-base", ...o });

test("tenslora params: --budget, --iso-lora, CP, config.json paths and the table solve and count like the formulas", () => {
  const budget = report({ model: "roberta-base", construction: "att_depth", budget: "20000" }).json as ParamsRow;
  assert.equal(budget.ranks.length, 4);
  assert.equal(budget.params, formula("att_depth", budget.ranks, 768, 12, 12));
  assert.ok(budget.params <= 20_000 && budget.params > 19_000, `budget 20000 gave ${budget.params}`);
  assert.equal(budget.budget, 20_000);
  const iso = report({ construction: "qkv_depth", isoLora: "4" }).json as ParamsRow;
  assert.equal(iso.budget, 221_184, "--iso-lora 4 is LoRA r=4's count");
  assert.equal(iso.params, formula("qkv_depth", iso.ranks, 768, 12, 12));
  assert.ok(iso.params <= 221_184, `iso-LoRA 4 gave ${iso.params}`);
  const rows = report({ isoLora: "2" }).json as ParamsRow[];
  assert.equal(rows.length, 8);
  for (const r of rows) {
    assert.equal(r.params, formula(r.construction, r.ranks, 768, 12, 12), r.construction);
    assert.ok(r.params <= 110_592, `${r.construction}: ${r.params} is over the budget`);
  }
  assert.equal(rows[0].params, 110_592);
  // CP: L · R · (d + dh + H + 3) on ViT-L; LoRA ignores the factorisation
  const cp = report({ model: "vit-large", construction: "att_qkv", ranks: "5", factorization: "cp" }).json as ParamsRow;
  assert.deepEqual([cp.ranks, cp.params], [[5], 24 * 5 * (1024 + 64 + 16 + 3)]);
  assert.equal((report({ model: "vit-large", construction: "lora", ranks: "2", factorization: "cp" }).json as ParamsRow).params, 3 * 24 * 2 * 2048);
  const tiny = report({ model: join(FIXTURES, "vit", "config.json"), construction: "lora", ranks: "4" }).json as ParamsRow;
  assert.equal(tiny.params, 3 * 4 * 4 * (64 + 64));
  assert.match(report({ budget: "100000" }).text, /^att_qkv_depth +in=\d+ dh=\d+ heads=\d+ qkv=\d+ depth=\d+ +\d{2,3},\d{3} +\d\.\d{3}$/m);
});

test("tenslora params: bad flags are ConfigErrors that say what is valid", () => {
  const cases: [Partial<ParamsOptions>, RegExp][] = [
    [{ construction: "att", ranks: "0" }, /integer ≥ 1, got 0/],
    [{ construction: "att", ranks: "2,1.5,2" }, /integer ≥ 1, got 1.5/],
    [{ construction: "qkv", ranks: "a,b" }, /--ranks must be one integer or a comma-separated list/],
    [{ construction: "tucker5" }, /unknown construction "tucker5"; valid constructions: lora, att, qkv, depth, att_qkv, att_depth, qkv_depth, att_qkv_depth/],
    [{ ranks: "8", budget: "1000" }, /give one of --ranks, --budget or --iso-lora, not --ranks and --budget/],
    [{ construction: "qkv_depth", budget: "10" }, /below the smallest "qkv_depth"/],
    [{ budget: "lots" }, /--budget must be a number ≥ 1/],
    [{ isoLora: "1.5" }, /--iso-lora must be an integer ≥ 1/],
    [{ factorization: "tensor-ring" }, /valid factorizations: tucker, cp, tt/],
    [{ construction: "qkv", factorization: "cp", ranks: "2,3,4" }, /CP takes one rank R/],
    [{ ranks: "8,8,3,12" }, /needs --construction/],
    [{ model: "vit-bas" }, /use one of vit-base, vit-large, vit-huge, roberta-base, roberta-large/],
  ];
  for (const [o, message] of cases) {
    assert.throws(
      () => report(o),
      (e: Error) => e instanceof ConfigError && message.test(e.message),
      JSON.stringify(o),
    );
  }
});

test("tenslora analyze: the multilinear ranks of the stacked updates are the adapter's ranks", async () => {
  // official qkv_depth factors (Tucker ranks in 6, out 5, qkv 2, depth 3) in our format
  const model = loadModel(join(FIXTURES, "vit"));
  const ctx = modelContext(model);
  const gold = readGolden("vit_tenslora_qkv_depth_golden");
  const planned = planSet(ctx.sites, { construction: "qkv_depth", ranks: [6, 5, 2, 3], scaling: 2, headLayout: "interleaved" });
  const tensors: WeightMap = new Map([["tenslora.0.core", { shape: [6, 5, 2, 3], data: goldenF32(gold, "core") }]]);
  ["in", "out", "qkv", "layer"].forEach((m, i) =>
    tensors.set(`tenslora.0.factors.${i}`, { shape: gold.get(`factor_${i}_${m}`)!.shape, data: goldenF32(gold, `factor_${i}_${m}`) }),
  );
  const { dir, cleanup } = tempDir("analyze");
  try {
    saveAdapter(dir, { ...planned, tensors }, ctx);
    const tens = await json("analyze", "--adapter", dir, "--model", join(FIXTURES, "vit"), "--out", join(dir, "plot.png"));
    const ranks = (r: { modes: { name: string; numerical_rank: number }[] }) => Object.fromEntries(r.modes.map((m) => [m.name, m.numerical_rank]));
    assert.equal(tens.groups.length, 1);
    const group = tens.groups[0];
    assert.deepEqual([group.name, group.construction], ["query+key+value", "qkv_depth"]);
    assert.deepEqual(
      group.modes.map((m: { name: string }) => m.name),
      ["in", "dh", "heads", "qkv", "depth"],
    );
    // a Tucker tensor's mode-n rank is its core's rank n (generic core): in 6, qkv 2, depth 3
    assert.deepEqual([ranks(group).in, ranks(group).qkv, ranks(group).depth], [6, 2, 3]);
    for (const m of group.modes) assert.equal(m.normalized[0], 1);
    for (const p of [join(dir, "plot.svg"), join(dir, "plot.png")]) assert.ok(existsSync(p), `${p} was not written`);
    // 12 LoRA updates of rank 4 span 48 input directions of 64; q/k/v and the 4 layers are full rank
    const lora = analyzeAdapter(join(FIXTURES, "vit_lora"), join(FIXTURES, "vit")).groups[0].spectrum;
    assert.deepEqual(
      lora.map((m) => [m.name, numericalRank(m)]),
      [
        ["in", 48],
        ["dh", 16],
        ["heads", 4],
        ["qkv", 3],
        ["depth", 4],
      ],
    );
  } finally {
    cleanup();
  }
});

test("tenslora analyze: every shape group of an all-linear adapter, each with its own multilinear ranks", async () => {
  const ctx = modelContext(loadModel(join(FIXTURES, "vit")));
  const set = randomizeAdapter(planSet(ctx.sites, { construction: "qkv_depth", ranks: [3, 2, 2, 2], targetModules: "all-linear" }), 4, 0.5);
  const { dir, cleanup } = tempDir("analyze-groups");
  try {
    saveAdapter(dir, set, ctx);
    const r = await json("analyze", "--adapter", dir, "--model", join(FIXTURES, "vit"), "--out", join(dir, "plot.svg"));
    assert.deepEqual(
      r.groups.map((g: { name: string }) => g.name),
      set.groups.map((g) => g.name),
    );
    assert.ok(r.groups.length >= 3, `the attention and MLP groups: ${r.groups.map((g: { name: string }) => g.name)}`);
    // a Tucker tensor with a random core has mode-n rank r_n: in, qkv (at most the group's projections) and depth
    for (const [i, g] of set.groups.entries()) {
      const rank = Object.fromEntries(r.groups[i].modes.map((m: { name: string; numerical_rank: number }) => [m.name, m.numerical_rank]));
      assert.deepEqual([rank.in, rank.qkv, rank.depth], [g.ranks[0], Math.min(g.ranks[2], g.shape.projections.length), g.ranks[3]], g.name);
    }
  } finally {
    cleanup();
  }
});
