import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../errors.ts";
import { DEFAULTS, applyConfig } from "../experiments/run-config.ts";
import { redisOptions } from "./connection.ts";
import { compareJobs, expandGrid, jobId, parseRunJob, parseSweepFile, sweepJobs } from "./jobs.ts";

const resolve = (v: Record<string, unknown>) => applyConfig(DEFAULTS, v, "test");

test("a run's job id depends on its settings, not on their order or on the thread count", () => {
  const a = { kind: "train" as const, config: resolve({ lr: 0.001, seed: 1 }), dryRun: false };
  const reordered = { dryRun: false, config: Object.fromEntries(Object.entries(a.config).reverse()) as typeof a.config, kind: "train" as const };
  assert.equal(jobId(reordered), jobId(a));
  assert.equal(jobId({ ...a, config: { ...a.config, threads: 7 } }), jobId(a));
  assert.notEqual(jobId({ ...a, config: { ...a.config, lr: 0.002 } }), jobId(a));
  assert.notEqual(jobId({ ...a, dryRun: true }), jobId(a));
  assert.match(jobId(a), /^run-[0-9a-f]{24}$/, "BullMQ ids must not contain ':' nor be integers");
  const grid = { factorizations: ["tucker" as const], headLayouts: ["head_major" as const], coreLrScales: [1], rankModes: ["solver" as const] };
  const budgets = [
    { kind: "iso-lora" as const, rank: 2 },
    { kind: "iso-lora" as const, rank: 8 },
  ];
  const cmp = compareJobs(a.config, { ...grid, methods: ["lora", "head"], budgets, seeds: [0, 1, 2], fullLr: 1e-4, dryRun: false });
  // LoRA once per budget and seed, the baseline once per seed (it does not depend on the budget)
  assert.equal(new Set(cmp.runs.map((r) => r.id)).size, 9);
  assert.deepEqual(
    cmp.runs.map((r) => `${r.label}${r.seed}`),
    ["lora0", "lora1", "lora2", "lora0", "lora1", "lora2", "head0", "head1", "head2"],
  );
  const again = compareJobs(a.config, { ...grid, methods: ["lora", "head"], budgets, seeds: [0, 1, 2], fullLr: 1e-4, dryRun: false });
  assert.deepEqual(
    again.runs.map((r) => r.id),
    cmp.runs.map((r) => r.id),
    "the same comparison names the same jobs",
  );
});

test("a sweep file expands to the product of its grid, with one table row per setting other than the seed", () => {
  assert.equal(expandGrid({ a: [1, 2, 3], b: ["x", "y"], c: [true] }).length, 6);
  assert.deepEqual(
    expandGrid({ a: [1, 2], b: ["x", "y"] }).map((p) => `${p.a}${p.b}`),
    ["1x", "1y", "2x", "2y"],
  );
  const file = parseSweepFile({ base: { epochs: 2 }, grid: { construction: ["lora", "att"], lr: [0.001, 0.01], seed: [0, 1] } }, "s.json");
  const { jobs, runs, labels } = sweepJobs(file, resolve);
  assert.equal(jobs.length, 8);
  assert.deepEqual(labels, ["lora lr=0.001", "lora lr=0.01", "att lr=0.001", "att lr=0.01"]);
  assert.ok(jobs.every((j) => j.config.epochs === 2));
  assert.equal(new Set(runs.map((r) => r.id)).size, 8);
  assert.throws(() => parseSweepFile({ grid: { lr: [] } }, "s.json"), /grid "lr" must be a non-empty list/);
  assert.throws(() => parseSweepFile({ grid: {}, extra: 1 }, "s.json"), /unknown key "extra"/);
  assert.throws(() => sweepJobs(parseSweepFile({ grid: { learningRate: [1] } }, "s.json"), resolve), /unknown key "learningRate"/);
});

test("queue URLs: host, port, database and password; anything else is a ConfigError", () => {
  const o = redisOptions("redis://:s%40cret@10.0.0.5:6380/3");
  assert.deepEqual([o.host, o.port, o.db, o.password, o.tls], ["10.0.0.5", 6380, 3, "s@cret", undefined]);
  assert.deepEqual([redisOptions("rediss://h").port, redisOptions("rediss://h").db], [6379, 0]);
  assert.ok(redisOptions("rediss://h").tls);
  for (const bad of ["http://h:6379/0", "redis://h:6379/x", "not a url"]) assert.throws(() => redisOptions(bad), ConfigError, bad);
});

test("a queued compare job keeps its arm's learning rate through the queue's checks, and refuses one out of (0, 1]", () => {
  const config = resolve({});
  const grid = { factorizations: ["tucker" as const], headLayouts: ["head_major" as const], coreLrScales: [1], rankModes: ["solver" as const] };
  const cmp = compareJobs(config, {
    ...grid,
    methods: ["qkv"],
    lrs: [3e-3, 1e-2],
    budgets: [{ kind: "iso-lora", rank: 4 }],
    seeds: [0],
    fullLr: 1e-4,
    dryRun: false,
  });
  assert.deepEqual(
    cmp.runs.map((r) => r.label),
    ["qkv", "qkv+lr-0.01"],
  );
  for (const job of cmp.jobs) {
    const read = parseRunJob(jobId(job), JSON.parse(JSON.stringify(job)));
    assert.deepEqual(read, job);
  }
  assert.notEqual(jobId(cmp.jobs[0]), jobId(cmp.jobs[1]));
  const bad = JSON.parse(JSON.stringify(cmp.jobs[1]));
  bad.arm.lr = 5;
  assert.throws(
    () => parseRunJob(jobId(bad), bad),
    (e: unknown) => e instanceof ConfigError && e.message.includes('the arm\'s "lr" must be a number in (0, 1], got 5'),
  );
});
