/**
 * Where a sweep stands, read from the queue: each run's state, the worker running it, its
 * progress (percent, step, loss) and error, the connected workers, and an ETA from the runs done.
 */
import type { Job } from "bullmq";
import type { JobResult, RunJob, SweepRecord } from "./jobs.ts";
import { type SweepStore, readSweep } from "./queue.ts";
import type { JobProgress } from "./worker.ts";

export type RunState = "queued" | "running" | "retrying" | "done" | "failed" | "missing";
export const RUN_STATES: RunState[] = ["queued", "running", "retrying", "done", "failed", "missing"];

/** Where one job of a sweep stands: waiting, running (with progress), done or failed. */
export interface RunStatus {
  id: string;
  label: string;
  seed: number;
  state: RunState;
  /** The worker running it, or the one that finished or failed it. */
  worker: string | null;
  progress: JobProgress | null;
  /** Running on a worker that is no longer connected (killed): the run waits for its lock to expire and another worker to take it over. */
  orphaned: boolean;
  /** Attempts that ended (failed or retried). */
  attempts: number;
  error: string | null;
  /** Wall time of the attempt that finished it. */
  seconds: number | null;
  result: JobResult | null;
}

/** A sweep's jobs and their states, for `tenslora sweep status`. */
export interface SweepStatus {
  record: SweepRecord;
  runs: RunStatus[];
  counts: Record<RunState, number>;
  /** Workers connected to the queue now. */
  workers: string[];
  /** Seconds until the last run finishes at the current pace; null before any run has reported. */
  etaSec: number | null;
}

function stateOf(raw: string): RunState {
  if (raw === "active") return "running";
  if (raw === "completed") return "done";
  if (raw === "failed") return "failed";
  if (raw === "delayed") return "retrying";
  if (raw === "unknown") return "missing";
  return "queued";
}

/** Read a sweep's job states from Redis (the newest sweep when no name is given). */
export async function sweepStatus(store: SweepStore, name?: string): Promise<SweepStatus> {
  const record = await readSweep(store, name);
  const { queue } = store;
  const [jobs, states, workers] = await Promise.all([
    Promise.all(record.runs.map((r) => queue.getJob(r.id) as Promise<Job<RunJob, JobResult> | undefined>)),
    Promise.all(record.runs.map((r) => queue.getJobState(r.id))),
    queue.getWorkers(),
  ]);
  const connected = new Set(workers.map((w) => String(w.rawname ?? "").split(":w:")[1] || String(w.addr)));
  const runs: RunStatus[] = record.runs.map((r, i) => {
    const job = jobs[i];
    const state = stateOf(states[i]);
    const progress = job && typeof job.progress === "object" && state === "running" ? (job.progress as unknown as JobProgress) : null;
    const worker = progress?.worker ?? job?.processedBy ?? null;
    return {
      ...r,
      state,
      worker,
      progress,
      orphaned: state === "running" && worker !== null && !connected.has(worker),
      attempts: job?.attemptsMade ?? 0,
      error: job?.failedReason || null,
      seconds: state === "done" ? (job?.returnvalue?.seconds ?? null) : null,
      result: state === "done" ? (job?.returnvalue ?? null) : null,
    };
  });
  const counts = Object.fromEntries(RUN_STATES.map((s) => [s, runs.filter((r) => r.state === s).length])) as Record<RunState, number>;
  return { record, runs, counts, workers: [...connected], etaSec: eta(runs, workers.length) };
}

/** Work left divided among the workers: queued runs at the mean time of the finished ones, running ones at their own ETA. */
function eta(runs: RunStatus[], workers: number): number | null {
  const done = runs.filter((r) => r.seconds !== null).map((r) => r.seconds!);
  const mean = done.length ? done.reduce((a, b) => a + b, 0) / done.length : null;
  const running = runs.filter((r) => r.state === "running");
  const waiting = runs.filter((r) => r.state === "queued" || r.state === "retrying").length;
  if (!running.length && !waiting) return 0;
  // an orphaned run starts again from its checkpoint on another worker: its own ETA died with its worker
  const runningLeft = running.map((r) => (r.progress?.step && !r.orphaned ? r.progress.etaSec : (mean ?? Number.NaN)));
  if (runningLeft.some(Number.isNaN) || (waiting && mean === null)) return null;
  const parallel = Math.max(1, workers, running.length);
  return (runningLeft.reduce((a, b) => a + b, 0) + waiting * (mean ?? 0)) / parallel;
}

const fmtTime = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.floor(s / 60)} m ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`);

/** Every run when the sweep is small; otherwise the running, retrying and failed ones. */
export function statusTable(st: SweepStatus, all = false): string {
  const c = st.counts;
  const orphaned = st.runs.filter((r) => r.orphaned).length;
  const head = [
    `sweep ${st.record.name} (${st.record.kind}, ${st.runs.length} runs): ${c.done} done, ${c.running - orphaned} running${orphaned ? `, ${orphaned} orphaned` : ""}, ${c.queued} queued, ${c.retrying} retrying, ${c.failed} failed${c.missing ? `, ${c.missing} missing` : ""}`,
    `workers connected: ${st.workers.length}${st.workers.length ? ` (${st.workers.join(", ")})` : ""}; ETA ${st.etaSec === null ? "–" : fmtTime(st.etaSec)}`,
  ];
  const shown = all || st.runs.length <= 40 ? st.runs : st.runs.filter((r) => ["running", "retrying", "failed", "missing"].includes(r.state));
  if (!shown.length) return `${head.join("\n")}\n`;
  const rows = shown.map((r) => {
    const p = r.progress?.step ? r.progress : null;
    const detail =
      r.state === "done"
        ? fmtTime(r.seconds ?? 0) + (r.result?.resumedFromStep ? ` (resumed at step ${r.result.resumedFromStep})` : "")
        : r.orphaned
          ? `its worker ${r.worker} is gone; ${st.workers.length ? "another worker takes the run over from its checkpoint once the lock expires" : "no worker is connected: start one (tenslora worker) to take the run over from its checkpoint"}`
          : (r.error ?? (p ? `ETA ${fmtTime(p.etaSec)}` : ""));
    return `| ${r.label} | ${r.seed} | ${r.orphaned ? "orphaned" : r.state} | ${r.worker ?? "–"} | ${p ? `${p.percent.toFixed(0)}% (${p.step}/${p.total})` : r.state === "done" ? "100%" : "–"} | ${p ? p.loss.toFixed(4) : "–"} | ${r.attempts} | ${detail.replace(/\|/g, "\\|").replace(/\n/g, " ")} |`;
  });
  return [...head, "", "| run | seed | state | where | progress | loss | attempts | time / error |", "|---|---:|---|---|---|---:|---:|---|", ...rows, ""].join(
    "\n",
  );
}
