/**
 * The consumer side: a BullMQ worker that runs queued runs with the library's own training code
 * (a comparison's arm × budget × seed through `runOne`, a grid point through `runTraining`), reports progress to
 * the job, and keeps every run's files under `<artifacts>/<job id>`. When that folder is shared
 * between machines, a run taken over from a dead worker continues from its last checkpoint.
 *
 * Failure policy: a TensLoRAError (bad ranks, bad data, a diverged loss) is a property of the run's
 * settings, so the job fails at once (UnrecoverableError); anything else gets BullMQ's bounded,
 * backed-off attempts. A stop request checkpoints the current run and puts its job back in the
 * queue without spending an attempt.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Job, UnrecoverableError, WaitingError, Worker } from "bullmq";
import { ConfigError, RunInterruptedError, TensLoRAError } from "../errors.ts";
import { type Arm, budgetLabel, expandArms } from "../experiments/arms.ts";
import { type RunSummary, compareOptions, resolveBudget, runDir, runOne } from "../experiments/compare.ts";
import { runSummary } from "../experiments/curve.ts";
import type { RunConfig } from "../experiments/run-config.ts";
import { parseRanks } from "../experiments/run-config.ts";
import { type PreparedData, backboneParams, prepareData, runTraining } from "../experiments/run.ts";
import { checkTrainSettings } from "../experiments/run-plan.ts";
import { listCheckpoints } from "../train/checkpoint.ts";
import { LOCK, type RunMode } from "../train/run-folder.ts";
import type { TrainEvent } from "../train/trainer.ts";
import type { Runtime } from "../runtime/types.ts";
import { QUEUE_NAME, QUEUE_PREFIX, redisOptions } from "./connection.ts";
import { type JobResult, type RunJob, parseRunJob } from "./jobs.ts";

/** What a worker says about its jobs and its connection (the CLI prints it). */
export type WorkerLog =
  | { type: "job"; event: "start"; id: string; run: string; attempt: number; resumeFromStep: number }
  | { type: "job"; event: "done"; id: string; run: string; seconds: number; best: number | null }
  /** Stopped mid-run with a checkpoint: on a stop request (back in the queue), or on losing its lock (another worker has it). */
  | { type: "job"; event: "requeued"; id: string; run: string; reason: "stop" | "lock-lost"; message: string }
  | { type: "job"; event: "failed"; id: string; run: string; error: string; willRetry: boolean }
  | { type: "job"; event: "note"; id: string; run: string; message: string }
  | { type: "redis"; message: string };

/** How a sweep worker connects, how many jobs it runs at once and where it writes. */
export interface WorkerSettings {
  url: string;
  /** The backend runs train on. */
  runtime: Runtime;
  /** Runs at once in this process. */
  concurrency: number;
  /** ONNX Runtime threads per run; undefined keeps the run's own setting. */
  threads?: number;
  /** Root of the run folders (shared storage lets another machine resume a run). */
  artifacts: string;
  /** Shown in `sweep status` as where a run is running; default host:pid. */
  name?: string;
  /** A run whose worker renews no lock for this long is taken over by another worker. */
  lockMs: number;
  /** How often each worker looks for such stalled runs. */
  stalledMs: number;
  /** Where the worker reports jobs taken, finished and failed. */
  log: (e: WorkerLog) => void;
}

/** Progress at most this often (plus every checkpoint and the last step): a Redis write per step would dominate tiny runs. */
const PROGRESS_EVERY_MS = 1000;

/** A running job's progress as the worker reports it to the queue. */
export interface JobProgress {
  percent: number;
  step: number;
  total: number;
  loss: number;
  etaSec: number;
  worker: string;
  /** The step of the run's last checkpoint (0: none yet): where another worker would continue. */
  checkpoint: number;
}

export const runLabel = (job: RunJob): string =>
  job.kind === "compare"
    ? `${job.arm.name}${job.budget ? `@${budgetLabel(job.budget)}` : ""}/seed${job.seed}`
    : `${job.config.construction}/seed${job.config.seed}`;

/** A failed job's label, also for a payload the worker refused to read. */
function safeLabel(job: Job<RunJob, JobResult>): string {
  try {
    return runLabel(parseRunJob(job.id, job.data));
  } catch {
    return "(refused job)";
  }
}

/** The one-arm grid of a comparison arm (and the arm of a `train` run), for the arm's own checks and run. */
const armGrid = (a: Omit<Arm, "name">) => ({
  methods: [a.method],
  factorizations: [a.factorization],
  headLayouts: [a.headLayout],
  coreLrScales: [a.coreLrScale],
  rankModes: [a.ranks],
});

/** A dry run resolves and validates the run's settings without loading a model or data. */
function checkSettings(job: RunJob, cfg: RunConfig): void {
  const arm =
    job.kind === "compare"
      ? job.arm
      : {
          method: cfg.construction as Arm["method"],
          factorization: cfg.factorization as Arm["factorization"],
          headLayout: cfg.headLayout as Arm["headLayout"],
          coreLrScale: cfg.coreLrScale,
          ranks: "solver" as const,
        };
  expandArms(armGrid(arm));
  if (cfg.ranks) parseRanks(cfg.ranks);
  checkTrainSettings(cfg);
}

const checkpointStep = (dir: string): number => listCheckpoints(dir)[0]?.step ?? 0;

/**
 * The queue hands a run to one worker at a time, so a run-folder lock left by a worker on another
 * machine (which the lock file cannot test for life) belongs to a worker that lost the run.
 */
function takeOverFolder(dir: string, log: (s: string) => void): void {
  const path = join(dir, LOCK);
  let owner: { pid: number; host: string };
  try {
    owner = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return; // absent, or torn: the lock itself treats a torn one as stale
  }
  if (owner.host === hostname()) return; // the lock itself tells a dead local owner from a live one
  rmSync(path, { force: true });
  log(`took over ${dir} from process ${owner.pid} on ${owner.host}, whose worker no longer holds the run`);
}

const withoutThreads = ({ threads: _threads, ...rest }: RunConfig) => JSON.stringify(rest, Object.keys(rest).sort());

/**
 * How a `train` job takes its folder when it holds no checkpoint: an absent or empty folder is
 * new; one whose config.json is this run's (a worker died before the first checkpoint) is
 * emptied and started again; anything else was not made by this run and is left alone.
 */
function startMode(dir: string, cfg: RunConfig): RunMode {
  const held = existsSync(dir) ? readdirSync(dir).filter((n) => n !== LOCK) : [];
  if (held.length === 0) return "new";
  let saved: RunConfig | undefined;
  try {
    saved = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  } catch {}
  if (saved && withoutThreads(saved) === withoutThreads(cfg)) return "overwrite";
  throw new ConfigError(
    `${dir} holds files this run did not write (${held.slice(0, 3).join(", ")}${held.length > 3 ? ", …" : ""}); the worker does not empty a folder it did not create: move them away`,
  );
}

/** A `train` run's summary.json in the table's terms. */
function trainSummary(dir: string, cfg: RunConfig): { summary: RunSummary; backboneParams: number; metric: string } {
  const s = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
  return {
    summary: runSummary(
      { arm: cfg.construction, budget: "", seed: cfg.seed, ranks: s.ranks, adapterParams: cfg.construction === "full" ? s.backboneParams : s.adapterParams },
      s,
    ),
    backboneParams: s.backboneParams,
    metric: s.metric,
  };
}

/** Start a worker that takes jobs from the sweep queue and runs them; `stop` lets the current job finish. */
export function startWorker(s: WorkerSettings): {
  /** The BullMQ worker, for its events. */
  worker: Worker<RunJob, JobResult>;
  /** Take no more jobs and wait for the running ones to finish (BullMQ's close). */
  stop: () => Promise<void>;
} {
  const name = s.name ?? `${hostname()}:${process.pid}`;
  let stopping = false;
  // runs whose lock could not be renewed (Redis was away too long): another worker may own them now
  const lost = new Set<string>();
  // the data of the last comparison, kept between its cells (a comparison's jobs share it)
  let cached: { key: string; prepared: Promise<PreparedData> } | undefined;
  const prepare = (cfg: RunConfig) => {
    const key = JSON.stringify(cfg);
    if (cached?.key !== key) cached = { key, prepared: prepareData(cfg, s.runtime, () => {}) };
    return cached.prepared;
  };

  const processor = async (job: Job<RunJob, JobResult>, token?: string): Promise<JobResult> => {
    const t0 = Date.now();
    let data: RunJob;
    try {
      data = parseRunJob(job.id, job.data);
    } catch (e) {
      // written into Redis by something other than tenslora: never run, never retried
      throw new UnrecoverableError((e as Error).message);
    }
    const id = job.id!;
    const run = runLabel(data);
    const cfg: RunConfig = { ...data.config, threads: s.threads ?? data.config.threads };
    const dir = join(s.artifacts, id);
    const folder = data.kind === "compare" ? runDir(dir, data.arm.name, data.budget ? budgetLabel(data.budget) : "", data.seed) : dir;
    const resumeFromStep = data.dryRun ? 0 : checkpointStep(folder);
    s.log({ type: "job", event: "start", id, run, attempt: job.attemptsMade + 1, resumeFromStep });
    const shouldStop = () => stopping || lost.has(id);
    let last = 0;
    let p: JobProgress = { percent: 0, step: 0, total: 0, loss: 0, etaSec: 0, worker: name, checkpoint: resumeFromStep };
    const send = () => {
      last = Date.now();
      job.updateProgress(p as unknown as object).catch((err) => s.log({ type: "redis", message: `progress of ${id} not sent: ${(err as Error).message}` }));
    };
    const onEvent = (e: TrainEvent) => {
      if (e.type === "checkpoint") {
        p = { ...p, checkpoint: e.step };
        send();
      } else if (e.type === "step") {
        p = { ...p, percent: (100 * e.step) / e.total, step: e.step, total: e.total, loss: e.loss, etaSec: e.etaSec };
        if (e.step === e.total || Date.now() - last >= PROGRESS_EVERY_MS) send();
      }
    };
    try {
      let out: { summary: RunSummary | null; backboneParams: number; metric: string; budget?: { label: string; params: number } };
      if (data.dryRun) {
        checkSettings(data, cfg);
        out = { summary: null, backboneParams: 0, metric: cfg.metric };
      } else if (data.kind === "compare") {
        const prepared = await prepare(cfg);
        const budgets = data.budget ? [data.budget] : [];
        const o = await compareOptions(cfg, prepared, {
          ...armGrid(data.arm),
          budgets,
          seeds: [data.seed],
          fullLr: data.fullLr,
          outDir: dir,
          runtime: s.runtime,
        });
        // planning reads the model the data was prepared for; the run loads its own
        const probe = await (prepared.peekModel?.() ?? prepared.loadModel(data.seed));
        const backbone = backboneParams(probe);
        const budget = data.budget ? resolveBudget(data.budget, probe) : undefined;
        const summary = await runOne(
          { ...o, resume: true, shouldStop, onEvent: (_run, e) => onEvent(e) },
          { arm: data.arm, budget, seed: data.seed },
          backbone,
        );
        out = { summary, backboneParams: backbone, metric: o.config.metric, ...(budget ? { budget: { label: budget.label, params: budget.params } } : {}) };
      } else {
        // a summary is written also when a run stops early: only a finished run's is reused
        const summaryPath = join(dir, "summary.json");
        if (!existsSync(summaryPath) || JSON.parse(readFileSync(summaryPath, "utf8")).interrupted) {
          takeOverFolder(dir, (message) => s.log({ type: "job", event: "note", id, run, message }));
          // a run that died before its first checkpoint left files but nothing to continue from
          const r = await runTraining(cfg, dir, { runtime: s.runtime, onEvent, shouldStop }, resumeFromStep > 0 ? "resume" : startMode(dir, cfg));
          if (r.interrupted) throw new RunInterruptedError(`${run} stopped at step ${r.steps}; its checkpoint is in ${dir}`);
        }
        out = trainSummary(dir, cfg);
      }
      const seconds = (Date.now() - t0) / 1000;
      s.log({ type: "job", event: "done", id, run, seconds, best: out.summary?.selected ?? null });
      return { ...out, worker: name, resumedFromStep: resumeFromStep, seconds };
    } catch (e) {
      if (e instanceof RunInterruptedError && lost.delete(id)) {
        s.log({
          type: "job",
          event: "requeued",
          id,
          run,
          reason: "lock-lost",
          message: `lost its lock; the worker that takes it over continues from the checkpoint (${e.message})`,
        });
        throw e;
      }
      if (e instanceof RunInterruptedError) {
        await job.moveToWait(token);
        s.log({ type: "job", event: "requeued", id, run, reason: "stop", message: e.message });
        throw new WaitingError();
      }
      // the settings themselves are wrong: retrying cannot help
      if (e instanceof TensLoRAError) throw new UnrecoverableError(e.message);
      throw e;
    }
  };

  const worker = new Worker<RunJob, JobResult>(QUEUE_NAME, processor, {
    prefix: QUEUE_PREFIX,
    connection: redisOptions(s.url, {
      onRetry: (attempt, delay) => s.log({ type: "redis", message: `connection lost; reconnect attempt ${attempt} in ${(delay / 1000).toFixed(1)} s` }),
    }),
    name,
    concurrency: s.concurrency,
    lockDuration: s.lockMs,
    stalledInterval: s.stalledMs,
    // a run can outlive two dead workers before it is given up as failing
    maxStalledCount: 2,
  });
  worker.on("failed", (job, err) => {
    if (!job) return;
    const willRetry = err.name !== "UnrecoverableError" && job.attemptsMade < (job.opts.attempts ?? 1);
    s.log({ type: "job", event: "failed", id: String(job.id), run: safeLabel(job), error: err.message, willRetry });
  });
  worker.on("error", (err) => s.log({ type: "redis", message: err.message }));
  worker.on("lockRenewalFailed", (ids) => {
    for (const id of ids) lost.add(id);
  });
  return {
    worker,
    stop: async () => {
      stopping = true;
      await worker.close();
    },
  };
}
