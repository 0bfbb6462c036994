/**
 * Queue throughput and fault tolerance at scale: 2,000 dry-run jobs (each resolves and checks its
 * run settings, no training) over 8 worker processes on a private redis-server. Midway two workers
 * are SIGKILLed and two fresh ones started. Counted from Redis's own event stream: jobs completed
 * (none may be missing) and completions per job (none may be twice); from the workers' logs: how
 * many runs were executed again because their worker died before Redis recorded them. The peer is
 * the same sweep with no worker killed, in the same invocation.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import { QueueEvents } from "bullmq";
import { resolveRunConfig } from "../cli/options.ts";
import { QUEUE_NAME, QUEUE_PREFIX, redisOptions } from "../src/sweep/connection.ts";
import { parseSweepFile, sweepJobs } from "../src/sweep/jobs.ts";
import { openStore, submitSweep } from "../src/sweep/queue.ts";
import { startRedis } from "../test/redis-server.ts";
import { BENCH_DIR } from "./harness.ts";

const BIN = join(BENCH_DIR, "..", "bin", "tenslora.js");

interface Proc {
  child: ChildProcessWithoutNullStreams;
  done: string[];
  ready: Promise<void>;
}

function startWorker(url: string, name: string, lockSeconds: number): Proc {
  const child = spawn(process.execPath, [
    BIN,
    "worker",
    "--queue",
    url,
    "--json",
    "--name",
    name,
    "--lock-seconds",
    String(lockSeconds),
    "--stalled-seconds",
    "1",
  ]);
  const p: Proc = { child, done: [], ready: Promise.resolve() };
  let buf = "";
  p.ready = new Promise((resolve) => {
    child.stdout.on("data", (d) => {
      buf += d;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) {
        const e = JSON.parse(l);
        if (e.type === "ready") resolve();
        if (e.type === "job" && e.event === "done") p.done.push(e.id);
      }
    });
  });
  child.stderr.resume();
  return p;
}

interface Outcome {
  seconds: number;
  jobsPerSec: number;
  completed: number;
  lost: number;
  completedTwice: number;
  reExecuted: number;
}

async function runOnce(url: string, n: number, workers: number, kill: number, lockSeconds: number): Promise<Outcome> {
  const procs = Array.from({ length: workers }, (_, i) => startWorker(url, `b${i}`, lockSeconds));
  await Promise.all(procs.map((p) => p.ready));
  const events = new QueueEvents(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: redisOptions(url) });
  await events.waitUntilReady();
  const completions = new Map<string, number>();
  let killedAt = -1;
  const allDone = new Promise<void>((resolve) => {
    events.on("completed", ({ jobId }) => {
      completions.set(jobId, (completions.get(jobId) ?? 0) + 1);
      if (kill && killedAt < 0 && completions.size >= n / 2) {
        killedAt = completions.size;
        for (const p of procs.slice(0, kill)) p.child.kill("SIGKILL");
        for (let i = 0; i < kill; i++) procs.push(startWorker(url, `b${workers + i}`, lockSeconds));
      }
      if (completions.size === n) resolve();
    });
  });
  const file = parseSweepFile({ base: {}, grid: { seed: Array.from({ length: n }, (_, i) => i) }, dryRun: true }, "bench");
  const { jobs, runs, labels, base } = sweepJobs(file, (v) => resolveRunConfig(v));
  const store = await openStore(url);
  const t0 = performance.now();
  await submitSweep(store, { name: "bench", kind: "train", metric: base.metric, isoLoraRank: base.isoLora, labels, valFraction: base.valFraction, runs }, jobs);
  await allDone;
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 500)); // a late duplicate completion would show up here
  const states = await Promise.all(runs.map((r) => store.queue.getJobState(r.id)));
  for (const p of procs) p.child.kill("SIGTERM");
  await Promise.all(procs.map((p) => new Promise((r) => (p.child.exitCode !== null || p.child.signalCode !== null ? r(null) : p.child.once("exit", r)))));
  await events.close();
  await store.close();
  const executions = new Map<string, number>();
  for (const id of procs.flatMap((p) => p.done)) executions.set(id, (executions.get(id) ?? 0) + 1);
  return {
    seconds,
    jobsPerSec: n / seconds,
    completed: states.filter((s) => s === "completed").length,
    lost: runs.filter((r) => !completions.has(r.id)).length,
    completedTwice: [...completions.values()].filter((c) => c > 1).length,
    reExecuted: [...executions.values()].filter((c) => c > 1).length,
  };
}

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const n = opt("jobs", 2000);
  const workers = opt("workers", 8);
  const kill = opt("kill", 2);
  const lockSeconds = opt("lock-seconds", 5);
  const redis = await startRedis();
  try {
    const faulty = await runOnce(redis.url, n, workers, kill, lockSeconds);
    const peer = args.includes("--no-peer") ? null : await runOnce(redis.url.replace(/\/0$/, "/1"), n, workers, 0, lockSeconds);
    console.log(`| sweep of ${n} dry-run jobs, ${workers} workers | seconds | jobs/s | completed | lost | completed twice | executed again |`);
    console.log("|---|---:|---:|---:|---:|---:|---:|");
    const row = (what: string, o: Outcome) =>
      console.log(`| ${what} | ${o.seconds.toFixed(1)} | ${o.jobsPerSec.toFixed(0)} | ${o.completed} | ${o.lost} | ${o.completedTwice} | ${o.reExecuted} |`);
    row(`${kill} killed midway and restarted`, faulty);
    if (peer) row("none killed (peer)", peer);
    console.log(
      JSON.stringify({
        bench: "sweep",
        jobs: n,
        workers,
        killed: kill,
        lock_s: lockSeconds,
        ...faulty,
        peer_jobs_per_s: peer?.jobsPerSec ?? null,
        throughput_ratio: peer ? faulty.jobsPerSec / peer.jobsPerSec : null,
      }),
    );
  } finally {
    await redis.stop();
  }
}
