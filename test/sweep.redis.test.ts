/**
 * Sweeps over a real redis-server with real worker processes: a comparison of the tiny ViT
 * (4 methods × 2 seeds) queued for three workers, one of them SIGKILLed in the middle of a run.
 * Every run must finish exactly once, the killed run must be taken over and continue from its
 * checkpoint, and the table (and every run's loss curve, byte for byte) must equal the in-process
 * `compare` with the same settings. Then: a run with bad ranks fails once with its error in
 * `sweep status`, Redis crashing mid-sweep loses nothing, and SIGTERM checkpoints a run back into
 * the queue.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Queue, QueueEvents } from "bullmq";
import { DEFAULTS, applyConfig } from "../src/experiments/run-config.ts";
import { QUEUE_NAME, QUEUE_PREFIX, redisOptions } from "../src/sweep/connection.ts";
import { type RunJob, jobId } from "../src/sweep/jobs.ts";
import { type SweepStore, openStore } from "../src/sweep/queue.ts";
import { sweepStatus } from "../src/sweep/status.ts";
import { BIN, assertOk, assertUserError, cliAsync } from "./cli-helpers.ts";
import { VIT, cliEnv, tempDir, writeImageFolder } from "./make-data.ts";
import { type RedisServer, startRedis } from "./redis-server.ts";

const dir = tempDir("tenslora-sweep-");
const artifacts = join(dir, "artifacts");
let redis: RedisServer;
let images = "";

before(async () => {
  images = join(dir, "images");
  await writeImageFolder(images, { classes: 4, perClass: 8, size: 32 }); // 24 train / 8 test
  redis = await startRedis();
});
after(async () => {
  await store?.close();
  for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  await redis?.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: JSON lines of the worker's --json output
type Json = Record<string, any>;

interface WorkerProc {
  name: string;
  child: ChildProcessWithoutNullStreams;
  events: Json[];
  stderr: string;
  exited: Promise<number | null>;
}
const workers: WorkerProc[] = [];

async function startWorker(name: string): Promise<WorkerProc> {
  const args = [
    BIN,
    "worker",
    "--queue",
    redis.url,
    "--json",
    "--name",
    name,
    "--artifacts",
    artifacts,
    "--threads",
    "1",
    "--lock-seconds",
    "10",
    "--stalled-seconds",
    "1",
  ];
  const child = spawn(process.execPath, args, { env: cliEnv(join(dir, "cache")) });
  const w: WorkerProc = { name, child, events: [], stderr: "", exited: new Promise((r) => child.once("exit", (code) => r(code))) };
  let buf = "";
  child.stdout.on("data", (d) => {
    buf += d;
    const lines = buf.split("\n");
    buf = lines.pop()!;
    for (const l of lines) if (l.trim()) w.events.push(JSON.parse(l));
  });
  child.stderr.on("data", (d) => (w.stderr += d));
  workers.push(w);
  await until(() => w.events.some((e) => e.type === "ready"), 60_000, `worker ${name} ready`);
  return w;
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${workers.map((w) => `${w.name}: ${w.stderr}`).join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const cliJson = async (args: string[]) => {
  const r = await cliAsync(args, 180_000);
  assertOk(r, args.slice(0, 2).join(" "));
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
};
// polled through the library (a CLI process per poll would cost seconds); the CLI's own output is checked once per test
let store: SweepStore | undefined;
const status = async (name: string): Promise<Json> => sweepStatus((store ??= await openStore(redis.url)), name);
const done = (name: string) => async () => {
  const c = (await status(name)).counts;
  return c.queued + c.running + c.retrying === 0;
};
const jobEvents = (event: string): Json[] =>
  workers.flatMap((w) => w.events.filter((e) => e.type === "job" && e.event === event).map((e) => ({ ...e, worker: w.name })));

const RUN = ["--model", VIT, "--data", "", "--epochs", "10", "--batch-size", "4", "--lr", "0.003", "--save-every", "3", "--threads", "1", "--iso-lora", "2"];
const runArgs = () => RUN.map((a) => (a === "" ? images : a));
const COMPARE = ["--constructions", "lora,att,qkv_depth,head", "--seeds", "0,1"];

test("a comparison on three workers, one SIGKILLed mid-run: each run finishes once, the killed one resumes, the table equals in-process compare", async () => {
  const inProcess = join(dir, "in-process");
  const local = cliAsync(["compare", ...runArgs(), ...COMPARE, "--out", inProcess, "--json"], 180_000);

  const [sub] = await cliJson(["compare", ...runArgs(), ...COMPARE, "--queue", redis.url, "--name", "cmp", "--json"]);
  assert.deepEqual([sub.added, sub.finished, sub.runs], [8, 0, 8]);
  const again = (await cliJson(["compare", ...runArgs(), ...COMPARE, "--queue", redis.url, "--name", "cmp", "--json"]))[0];
  assert.deepEqual([again.added, again.pending], [0, 8], "re-submitting queues nothing twice");

  // kill the worker of the first run seen past its first checkpoint with most of the run left
  const events = new QueueEvents(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: redisOptions(redis.url) });
  let killed: { jobId: string; worker: string; step: number } | undefined;
  events.on("progress", ({ jobId, data }) => {
    const p = data as { checkpoint: number; step: number; total: number; worker: string };
    if (killed || !(p.checkpoint > 0) || p.step > p.total / 2) return;
    const w = workers.find((x) => x.name === p.worker)!;
    w.child.kill("SIGKILL");
    killed = { jobId, worker: p.worker, step: p.checkpoint };
  });
  await events.waitUntilReady();
  await Promise.all(["w0", "w1", "w2"].map(startWorker));
  await until(() => killed !== undefined, 300_000, "a run past its first checkpoint");
  await until(done("cmp"), 300_000, "every run of the comparison");
  await events.close();

  const [st] = await cliJson(["sweep", "status", redis.url, "--name", "cmp", "--json"]);
  assert.equal(st.counts.done, 8, JSON.stringify(st.counts));
  // exactly once: every run's training ended once across all workers (the killed worker never ended its run)
  const finished = jobEvents("done").map((e) => e.id as string);
  assert.deepEqual([...finished].sort(), st.runs.map((r: { id: string }) => r.id).sort(), "each run finished exactly once");
  const rerun = st.runs.find((r: { id: string }) => r.id === killed!.jobId);
  assert.notEqual(rerun.worker, killed!.worker, "another worker finished the killed run");
  const starts = jobEvents("start").filter((e) => e.id === killed!.jobId);
  assert.equal(starts.length, 2, "the killed run was started twice: by its first worker and by the one that took it over");
  const takeover = starts.find((e) => e.worker !== killed!.worker)!;
  assert.ok(takeover.resumeFromStep >= killed!.step, `resumed from a checkpoint (step ${takeover.resumeFromStep}, killed after ${killed!.step})`);

  const [res] = await cliJson(["sweep", "results", redis.url, "--name", "cmp", "--out", join(dir, "queued"), "--json"]);
  const r = await local;
  assertOk(r, "in-process compare");
  const ref = JSON.parse(readFileSync(join(inProcess, "results.json"), "utf8"));
  const strip = (rows: { stepSeconds?: number }[]) => rows.map(({ stepSeconds: _s, ...row }) => row);
  assert.deepEqual(strip(res.rows), strip(ref.rows), "the table equals the in-process comparison's");
  assert.deepEqual(
    [res.metric, res.budgets, res.seeds, res.valFraction, res.backboneParams],
    [ref.metric, ref.budgets, ref.seeds, ref.valFraction, ref.backboneParams],
    "the same metric, budgets, seeds and validation split",
  );
  assert.deepEqual(strip(JSON.parse(readFileSync(join(dir, "queued", "results.json"), "utf8")).rows), strip(ref.rows));
  for (const run of st.runs) {
    // the adapters ran at the one budget (--iso-lora 2: "r2"), the linear probe once without one
    const name = run.label === "head" ? `head-seed${run.seed}` : join("r2", `${run.label}-seed${run.seed}`);
    const queued = readFileSync(join(artifacts, run.id, "runs", name, "metrics.jsonl"), "utf8");
    assert.equal(queued, readFileSync(join(inProcess, "runs", name, "metrics.jsonl"), "utf8"), `${name}: the same losses and evaluations, step by step`);
  }
  const resubmit = (await cliJson(["compare", ...runArgs(), ...COMPARE, "--queue", redis.url, "--name", "cmp", "--json"]))[0];
  assert.deepEqual([resubmit.added, resubmit.finished], [0, 8], "finished runs are reused");
});

test("bad ranks fail once with the error in `sweep status`; SIGTERM checkpoints a run back into the queue; a Redis crash mid-sweep loses nothing", async () => {
  const file = join(dir, "sweep.json");
  const base = { model: VIT, data: images, epochs: 60, batchSize: 4, lr: 0.003, saveEvery: 2, construction: "qkv_depth", threads: 1 };
  writeFileSync(file, JSON.stringify({ name: "grid", base, grid: { ranks: ["2,2,2,2", "2,2"], seed: [0, 1] } }));
  const [sub] = await cliJson(["sweep", "--config", file, "--queue", redis.url, "--json"]);
  assert.equal(sub.added, 4);

  // SIGTERM a worker in the middle of a run: it checkpoints, puts the run back and leaves
  const live = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  assert.equal(live.length, 2);
  const runningOn = async (w: WorkerProc) =>
    (await status("grid")).runs.some((r: Json) => r.state === "running" && r.worker === w.name && r.progress?.checkpoint > 0);
  await until(() => runningOn(live[0]), 60_000, `${live[0].name} past a checkpoint of a grid run`);
  live[0].child.kill("SIGTERM");
  assert.equal(await live[0].exited, 0, `SIGTERM: the worker leaves cleanly\n${live[0].stderr}`);

  // Redis dies while the other worker runs; it reports the lost connection, reconnects, and nothing is lost
  await redis.crashAndRestart(200);
  await startWorker("w3");
  await until(done("grid"), 300_000, "every run of the grid");

  const st = await status("grid");
  assert.deepEqual([st.counts.done, st.counts.failed], [2, 2], JSON.stringify(st.runs));
  for (const r of st.runs) {
    if (r.state !== "failed") continue;
    assert.equal(r.id, st.runs.find((x: Json) => x.id === r.id).id);
    assert.match(r.error, /qkv_depth" has 4 modes .*got 2/, "the error says what is wrong");
    assert.equal(r.attempts, 1, "a configuration error is not retried");
  }
  assert.deepEqual(
    st.runs.map((r: Json) => r.state),
    ["done", "done", "failed", "failed"],
    "the runs with ranks 2,2 failed, the others finished",
  );
  const requeued = jobEvents("requeued").filter((e) => e.reason === "stop");
  assert.deepEqual(
    requeued.map((e) => e.worker),
    [live[0].name],
    "SIGTERM put the running run back",
  );
  const resumed = jobEvents("start")
    .filter((e) => e.id === requeued[0].id)
    .at(-1)!;
  assert.ok(resumed.resumeFromStep > 0, "and it continued from its checkpoint");
  const summary = JSON.parse(readFileSync(join(artifacts, requeued[0].id, "summary.json"), "utf8"));
  const trainLog = readFileSync(join(artifacts, requeued[0].id, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === "train");
  assert.equal(summary.interrupted, false);
  assert.deepEqual(
    trainLog.map((r) => r.step),
    Array.from({ length: summary.steps }, (_, i) => i + 1),
    "to the end, each step once",
  );
  assert.equal(trainLog.at(-1).epoch, 60);
  assert.ok(
    workers.some((w) => w.events.some((e) => e.type === "redis" && /connection lost/.test(String(e.message)))),
    "a worker reported the lost connection",
  );
  assert.deepEqual(jobEvents("done").filter((e) => st.runs.some((r: Json) => r.id === e.id)).length, 2, "each grid run finished once");

  const text = await cliAsync(["sweep", "status", redis.url, "--name", "grid"]);
  assertOk(text, "sweep status");
  assert.match(text.stdout, /\| failed \|.*has 4 modes/, `the table shows the failure and its error\n${text.stdout}`);
  const results = await cliAsync(["sweep", "results", redis.url, "--name", "grid", "--out", join(dir, "grid")]);
  assert.equal(results.code, 1);
  assert.match(results.stderr, /^tenslora: sweep grid: 2 of 4 runs are not done \(2 failed\); first failure/m);

  for (const w of workers.filter((x) => x.child.exitCode === null && x.child.signalCode === null)) {
    w.child.kill("SIGTERM");
    assert.equal(await w.exited, 0, w.stderr);
  }
});

test("a worker SIGKILLed with no other worker: its run shows as orphaned with no ETA from the dead worker, past its lock, until a new worker takes it over", async () => {
  const file = join(dir, "orphan.json");
  const base = { model: VIT, data: images, epochs: 40, batchSize: 4, lr: 0.003, saveEvery: 2, construction: "lora", ranks: "2", threads: 1 };
  writeFileSync(file, JSON.stringify({ name: "orphan", base, grid: { seed: [7] } }));
  assert.equal((await cliJson(["sweep", "--config", file, "--queue", redis.url, "--json"]))[0].added, 1);
  const lonely = await startWorker("lonely");
  const running = async () => (await status("orphan")).runs[0];
  await until(async () => (await running()).progress?.checkpoint > 0, 120_000, "the run past a checkpoint");
  const before = await running();
  assert.equal(before.orphaned, false);
  assert.ok(before.progress.etaSec > 0, "a live run has its own ETA");
  lonely.child.kill("SIGKILL");
  await lonely.exited;
  // the lock (--lock-seconds 10) expires with no worker left to notice the stalled run
  await new Promise((r) => setTimeout(r, 12_000));
  const st = await status("orphan");
  assert.deepEqual([st.runs[0].state, st.runs[0].orphaned, st.runs[0].worker], ["running", true, "lonely"], JSON.stringify(st.runs[0]));
  assert.equal(st.etaSec, null, "no ETA: the dead worker's is stale and no finished run gives a mean");
  const text = await cliAsync(["sweep", "status", redis.url, "--name", "orphan"]);
  assertOk(text, "sweep status");
  assert.match(text.stdout, /ETA –/, text.stdout);
  assert.match(text.stdout, /0 running, 1 orphaned, 0 queued/, text.stdout);
  assert.match(
    text.stdout,
    /\| orphaned \| lonely \|.*its worker lonely is gone; no worker is connected: start one \(tenslora worker\) to take the run over/,
    text.stdout,
  );
  assert.doesNotMatch(text.stdout, /\| running \|/, text.stdout);

  const heir = await startWorker("heir");
  await until(done("orphan"), 180_000, "the orphaned run taken over and finished");
  const after = await status("orphan");
  assert.deepEqual([after.runs[0].state, after.runs[0].orphaned, after.runs[0].worker], ["done", false, "heir"]);
  assert.ok(
    jobEvents("start").find((e) => e.worker === "heir" && e.id === after.runs[0].id)?.resumeFromStep >= before.progress.checkpoint,
    "from the checkpoint",
  );
  heir.child.kill("SIGTERM");
  assert.equal(await heir.exited, 0, heir.stderr);
});

test("an unreachable Redis or an unknown sweep is one `tenslora:` line, no stack", async () => {
  assertUserError(
    await cliAsync(["sweep", "status", "redis://127.0.0.1:1/0"]),
    /cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/0 \(.*ECONNREFUSED/,
    "unreachable Redis",
  );
  assertUserError(
    await cliAsync(["sweep", "results", redis.url, "--name", "nope", "--out", join(dir, "nope")]),
    /no sweep named "nope" in this queue; known: .*cmp/,
    "unknown sweep",
  );
  assertUserError(await cliAsync(["worker", "--queue", "http://127.0.0.1:6379"]), /--queue takes a redis:\/\/ or rediss:\/\/ URL/, "bad URL");
});

test("hostile queue entries: a job id with ../, an unknown payload key, a ../ arm name and a folder the worker did not create are refused, and nothing outside is touched", async () => {
  const queue = new Queue(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: redisOptions(redis.url) });
  try {
    const victim = join(dir, "victim");
    mkdirSync(victim, { recursive: true });
    writeFileSync(join(victim, "keep.txt"), "mine");
    const config = applyConfig(DEFAULTS, { epochs: 1, threads: 1 }, "test");
    const train: RunJob = { kind: "train", config, dryRun: false };
    // a tenslora-shaped job whose folder already holds someone else's file
    const occupied = { ...train, config: { ...config, seed: 99 } };
    mkdirSync(join(artifacts, jobId(occupied)), { recursive: true });
    writeFileSync(join(artifacts, jobId(occupied), "notes.txt"), "mine");
    const withOut = { ...train, config: { ...config, out: "../../x" } } as unknown as RunJob;
    const arm = { name: "../../escape", method: "lora", factorization: "tucker", headLayout: "head_major", coreLrScale: 1, ranks: "solver" };
    const badArm = { kind: "compare", config, arm, budget: { kind: "iso-lora", rank: 2 }, seed: 0, fullLr: 1e-4, dryRun: false } as unknown as RunJob;
    const cases: [string, unknown, RegExp][] = [
      ["../victim", train, /job id must be run-<24 hex digits>/],
      [jobId(withOut), withOut, /unknown key "out"/],
      [jobId(badArm), badArm, /arm name names a folder/],
      [jobId(occupied), occupied, /holds files this run did not write \(notes\.txt\).*does not empty a folder it did not create/],
    ];
    for (const [id, data] of cases) await queue.add("train", data as RunJob, { jobId: id, attempts: 3 });
    const w = await startWorker("hostile");
    await until(async () => (await Promise.all(cases.map(([id]) => queue.getJobState(id)))).every((s) => s === "failed"), 60_000, "the hostile jobs to fail");
    for (const [id, , why] of cases) {
      const job = (await queue.getJob(id))!;
      assert.match(job.failedReason, why, id);
      assert.equal(job.attemptsMade, 1, `${id}: refused once, not retried`);
    }
    assert.deepEqual(readdirSync(victim), ["keep.txt"], "nothing written beside the artifacts folder");
    assert.equal(readFileSync(join(victim, "keep.txt"), "utf8"), "mine");
    assert.deepEqual(readdirSync(join(artifacts, jobId(occupied))), ["notes.txt"], "a folder the worker did not create is not emptied");
    assert.ok(!existsSync(join(dir, "escape")) && !existsSync(join(artifacts, "..", "..", "x")));
    w.child.kill("SIGTERM");
    assert.equal(await w.exited, 0, w.stderr);
  } finally {
    await queue.close();
  }
});

test('after Redis loses its data (a restart without its files), `sweep status` says so instead of only "no sweep named …"', async () => {
  const file = join(dir, "lost.json");
  writeFileSync(file, JSON.stringify({ name: "lost", base: { model: VIT, data: images, epochs: 1, threads: 1 }, grid: { seed: [0, 1] } }));
  assert.equal((await cliJson(["sweep", "--config", file, "--queue", redis.url, "--json"]))[0].added, 2);
  assert.equal((await status("lost")).counts.queued, 2);
  await store?.close();
  store = undefined;
  await redis.crashAndRestart(100, { loseData: true });
  assertUserError(
    await cliAsync(["sweep", "status", redis.url, "--name", "lost"]),
    /no sweep named "lost" in this queue; known: none \(if one was submitted, this Redis has lost its data .* submit the sweep again, and run Redis with appendonly yes\)/,
    "a named sweep",
  );
  assertUserError(await cliAsync(["sweep", "status", redis.url]), /no sweep was submitted to this queue.*this Redis has lost its data/, "the latest sweep");
});
