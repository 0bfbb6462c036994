/**
 * `tenslora worker`: take runs from a Redis queue and train them, until SIGTERM/SIGINT; the first
 * signal lets the current runs checkpoint and go back to the queue, a second exits at once.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { ConfigError, nodeRuntime } from "../../src/index.ts";
import type { WorkerLog } from "../../src/sweep/index.ts";

const positiveInt = (v: unknown, flag: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer, got ${v}`);
  return n;
};
const positiveSeconds = (v: unknown, flag: string) => {
  const n = Number(v);
  if (!(n > 0)) throw new ConfigError(`${flag} must be a positive number of seconds, got ${v}`);
  return n * 1000;
};

function describe(e: WorkerLog): string {
  if (e.type === "redis") return `redis: ${e.message}`;
  if (e.event === "start") return `${e.run} (${e.id}): started, attempt ${e.attempt}${e.resumeFromStep ? `, resuming from step ${e.resumeFromStep}` : ""}`;
  if (e.event === "done") return `${e.run} (${e.id}): done in ${e.seconds.toFixed(1)} s${e.best !== null ? `, best ${(100 * e.best).toFixed(2)}` : ""}`;
  if (e.event === "note") return `${e.run} (${e.id}): ${e.message}`;
  if (e.event === "requeued") return `${e.run} (${e.id}): ${e.reason === "stop" ? "back in the queue" : "handed over"} (${e.message})`;
  return `${e.run} (${e.id}): failed${e.willRetry ? " (will retry)" : ""}: ${e.error}`;
}

export function register(program: Command): void {
  program
    .command("worker")
    .description("run queued runs (from `compare --queue` or `sweep`) until stopped; start one or more per machine")
    .requiredOption("--queue <url>", "Redis URL, redis://HOST:PORT/DB")
    .option("--concurrency <n>", "runs at once in this process", "1")
    .option("--threads <n>", "ONNX Runtime threads per run (default: the run's setting, 0 = all cores)")
    .option("--artifacts <dir>", "run folders (checkpoints, adapters, metrics); shared storage lets another machine resume a run", "runs/worker")
    .option("--name <name>", "how `sweep status` shows this worker (default: host:pid)")
    .option("--lock-seconds <s>", "a run whose worker stays silent this long is taken over by another worker", "60")
    .option("--stalled-seconds <s>", "how often to look for such runs", "15")
    .option("--json", "one JSON object per line")
    .action(async (opts: Record<string, unknown>) => {
      const threads = opts.threads === undefined ? undefined : Number(opts.threads);
      if (threads !== undefined && !(Number.isInteger(threads) && threads >= 0))
        throw new ConfigError(`--threads must be a non-negative integer, got ${opts.threads}`);
      const log = (e: WorkerLog) => (opts.json ? console.log(JSON.stringify(e)) : console.error(`worker: ${describe(e)}`));
      const { startWorker } = await import("../../src/sweep/worker.ts"); // BullMQ loads only here
      const { worker, stop } = startWorker({
        runtime: nodeRuntime,
        url: String(opts.queue),
        concurrency: positiveInt(opts.concurrency, "--concurrency"),
        threads,
        artifacts: resolve(String(opts.artifacts)),
        name: typeof opts.name === "string" ? opts.name : undefined,
        lockMs: positiveSeconds(opts.lockSeconds, "--lock-seconds"),
        stalledMs: positiveSeconds(opts.stalledSeconds, "--stalled-seconds"),
        log,
      });
      await worker.waitUntilReady().catch(() => {}); // unreachable Redis: the back-off reports and retries
      if (opts.json) console.log(JSON.stringify({ type: "ready", pid: process.pid }));
      else console.error(`worker: ready (pid ${process.pid}); SIGTERM or Ctrl-C lets the current runs checkpoint and return to the queue`);
      await new Promise<void>((done) => {
        let signals = 0;
        const onSignal = (sig: string) => {
          if (++signals > 1) process.exit(130);
          if (opts.json) console.log(JSON.stringify({ type: "stopping", signal: sig }));
          else console.error(`worker: ${sig}: finishing or checkpointing the current runs, then leaving`);
          stop().then(done, done);
        };
        process.on("SIGTERM", onSignal);
        process.on("SIGINT", onSignal);
      });
      if (opts.json) console.log(JSON.stringify({ type: "stopped", pid: process.pid }));
      else console.error("worker: stopped");
    });
}
