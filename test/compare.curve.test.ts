/**
 * `compare` over budgets and arms on the fixture ViT (synthetic image folder): every run is
 * there, each run's reported numbers are read back from its own metrics.jsonl (the test
 * accuracy at the best validation evaluation, the best test accuracy), the table's means and
 * paired differences equal what the per-seed summaries give by hand, a second call reuses every
 * finished run, and a finished run with other settings or made on another model is refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type CompareOptions, compare } from "../src/experiments/compare.ts";
import { DEFAULTS, type RunConfig } from "../src/experiments/run-config.ts";
import { prepareData, trainConfig } from "../src/experiments/run.ts";
import { ConfigError } from "../src/errors.ts";
import { tempDir, VIT, writeImageFolder } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

/**
 * A comparison on the fixture ViT over a synthetic two-class image folder (80/20 train/test, then
 * 10 % of train held out), at lr 1e-2 with full fine-tuning at 2e-3; `grid` names what it compares.
 */
async function fixtureComparison(
  perClass: number,
  epochs: number,
  grid: Pick<CompareOptions, "methods" | "headLayouts" | "budgets" | "seeds">,
): Promise<{ opts: CompareOptions; out: string }> {
  const dir = tempDir();
  const images = join(dir, "images");
  await writeImageFolder(images, { classes: 2, perClass, size: 32 });
  const cfg: RunConfig = { ...DEFAULTS, model: VIT, data: images, epochs, batchSize: 4, lr: 1e-2, warmup: 0, threads: 1 };
  const prepared = await prepareData(cfg, nodeRuntime, () => {});
  const probe = await prepared.loadModel(0);
  const out = join(dir, "cmp");
  const opts: CompareOptions = {
    runtime: nodeRuntime,
    loadModel: prepared.loadModel,
    data: prepared.data,
    factorizations: ["tucker"],
    coreLrScales: [1],
    rankModes: ["solver"],
    rankSlack: 0.01,
    config: trainConfig(cfg, probe.family.task),
    fullLr: 2e-3,
    outDir: out,
    ...grid,
  };
  return { opts, out };
}

test("compare over two budgets, two head layouts and two seeds: runs, selection, intervals, pairs, reuse", async () => {
  const { opts, out } = await fixtureComparison(12, 3, {
    methods: ["lora", "att", "head"],
    headLayouts: ["head_major", "interleaved"],
    budgets: [
      { kind: "iso-lora", rank: 1 },
      { kind: "iso-lora", rank: 2 },
    ],
    seeds: [0, 1],
  });
  const res = await compare(opts);

  // 2 budgets × (lora, att, att+interleaved) × 2 seeds, plus head × 2 seeds
  assert.equal(res.runs.length, 14);
  assert.deepEqual(
    res.rows.map((r) => `${r.budget}:${r.arm}`),
    ["r1:lora", "r1:att", "r1:att+interleaved", "r2:lora", "r2:att", "r2:att+interleaved", ":head"],
  );
  for (const s of res.runs) {
    const run = join(out, "runs", s.budget, `${s.arm}-seed${s.seed}`);
    const evals = readFileSync(join(run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === "eval");
    assert.ok(evals.length >= 3 && evals.every((e) => typeof e.val_accuracy === "number"), `${run}: every evaluation scores validation`);
    // selection: the highest validation accuracy, the latest among ties; the test accuracy there
    const top = Math.max(...evals.map((e) => e.val_accuracy));
    const chosen = evals.filter((e) => e.val_accuracy === top).at(-1);
    assert.equal(s.selectedStep, chosen.step, `${run}: selected step`);
    assert.equal(s.selected, chosen.accuracy, `${run}: test accuracy at the selected step`);
    assert.equal(s.validation, top);
    assert.equal(s.bestTest, Math.max(...evals.map((e) => e.accuracy)), `${run}: best test`);
    assert.equal(s.budget === "", s.arm === "head");
  }

  // rows: the mean of the seeds, an interval around it, paired differences seed by seed
  const of = (arm: string, budget: string) => res.runs.filter((r) => r.arm === arm && r.budget === budget).sort((a, b) => a.seed - b.seed);
  for (const row of res.rows) {
    const rs = of(row.arm, row.budget);
    assert.equal(row.selected.n, 2);
    assert.ok(Math.abs(row.selected.mean - (rs[0].selected + rs[1].selected) / 2) < 1e-12);
    assert.ok(row.selected.lo <= row.selected.mean && row.selected.mean <= row.selected.hi);
    if (row.arm.startsWith("att")) {
      const lora = of("lora", row.budget);
      const d = [0, 1].map((i) => rs[i].selected - lora[i].selected);
      assert.ok(Math.abs(row.vsLora!.mean - (d[0] + d[1]) / 2) < 1e-12, `${row.arm}@${row.budget}: mean paired difference`);
      assert.equal(row.vsLora!.positive, d.filter((x) => x > 0).length);
    } else assert.equal(row.vsLora, undefined);
    if (row.arm === "att+interleaved") {
      const base = of("att", row.budget);
      assert.equal(row.vsDefault!.against, "att");
      assert.ok(Math.abs(row.vsDefault!.mean - (rs[0].selected - base[0].selected + rs[1].selected - base[1].selected) / 2) < 1e-12);
    }
  }
  // the layout pooled over budgets: the mean of all four (budget, seed) differences
  const diffs = ["r1", "r2"].flatMap((b) => [0, 1].map((i) => of("att+interleaved", b)[i].selected - of("att", b)[i].selected));
  assert.deepEqual(
    res.pooled.map((p) => [p.tag, p.cells, p.n]),
    [["interleaved", 2, 4]],
  );
  assert.ok(Math.abs(res.pooled[0].mean - diffs.reduce((x, y) => x + y, 0) / 4) < 1e-12);
  // the iso-LoRA budgets: LoRA at exactly r, the tensor arms at or below its count
  const lora1 = res.rows.find((r) => r.arm === "lora" && r.budget === "r1")!;
  assert.deepEqual(lora1.ranks, [1]);
  assert.equal(lora1.params, res.budgets[0].params);
  for (const r of res.rows.filter((x) => x.arm.startsWith("att"))) assert.ok(r.params <= res.budgets.find((b) => b.label === r.budget)!.params);
  for (const f of ["results.json", "results.md", "metric-vs-params.svg", "metric-vs-params.png"]) assert.ok(existsSync(join(out, f)), f);
  assert.match(readFileSync(join(out, "results.md"), "utf8"), /\| r2 \| att\+interleaved \|/);

  // a second call trains nothing: every summary stays as it was
  const summary = join(out, "runs", "r1", "att-seed0", "summary.json");
  const before = statSync(summary).mtimeMs;
  const again = await compare(opts);
  assert.equal(statSync(summary).mtimeMs, before, "finished runs are reused");
  assert.deepEqual(again.rows, res.rows);
  // other settings on the same folder: refused, naming the folder
  await assert.rejects(compare({ ...opts, config: { ...opts.config, lr: 2e-2 } }), (e: Error) => e instanceof ConfigError && /other settings/.test(e.message));
  // and runs made on another build of the pretrained model (an embedded encoder's new version)
  await assert.rejects(compare({ ...opts, model: "encoder-v2" }), (e: Error) => e instanceof ConfigError && /other settings/.test(e.message));
});

// `compare --lrs`: each rate an arm trained at it (read back from each run's own metrics.jsonl), the
// baselines at the comparison's rate, and the default arm's settings those of a comparison without
// --lrs, so a folder of finished runs is reused by both
test("compare --lrs: an arm per rate, trained at it; the default arm's runs are a plain comparison's", async () => {
  const { opts, out } = await fixtureComparison(8, 1, {
    methods: ["lora", "head"],
    headLayouts: ["head_major"],
    budgets: [{ kind: "iso-lora", rank: 1 }],
    seeds: [0],
  });
  // the first rate is the default arm's, trained at config.lr: a caller who gives another is refused before anything trains
  await assert.rejects(
    compare({ ...opts, lrs: [3e-4, 1e-2] }),
    (e: Error) => e instanceof ConfigError && e.message.includes("lrs[0] = 0.0003, config.lr = 0.01"),
  );
  const res = await compare({ ...opts, lrs: [1e-2, 3e-4] });
  assert.deepEqual(
    res.rows.map((r) => `${r.budget}:${r.arm}`),
    ["r1:lora", "r1:lora+lr-0.0003", ":head"],
  );
  const peakLr = (arm: string, budget: string) =>
    Math.max(
      ...readFileSync(join(out, "runs", budget, `${arm}-seed0`, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((r) => r.type === "train")
        .map((r) => r.lr),
    );
  assert.equal(peakLr("lora", "r1"), 1e-2);
  assert.equal(peakLr("lora+lr-0.0003", "r1"), 3e-4);
  assert.equal(peakLr("head", ""), 1e-2);
  // the rate variant is paired against its default sibling in the pooled rows
  assert.deepEqual(
    res.pooled.map((p) => p.tag),
    ["lr-0.0003"],
  );

  // without --lrs the same folder's default-rate runs are finished runs of this comparison
  const again = await compare({ ...opts, methods: ["lora", "head"] });
  // as summary.json holds it (a reused run is read back from there): equal, step times included, so not retrained
  const saved = (r: { runs: { arm: string }[] }, arm: string) => JSON.parse(JSON.stringify(r.runs.find((x) => x.arm === arm)));
  for (const arm of ["lora", "head"]) assert.deepEqual(saved(again, arm), saved(res, arm), `${arm} reused, not retrained`);
});
