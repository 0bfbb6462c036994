/**
 * The producer side: open the queue, enqueue a sweep's jobs under their content-derived ids, and
 * keep a record of each sweep (its runs, labels and metric) next to the queue so `sweep status`
 * and `sweep results` can find it from any machine.
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { TensLoRAError } from "../errors.ts";
import { type ConnectionHooks, QUEUE_NAME, QUEUE_PREFIX, redactUrl, redisOptions } from "./connection.ts";
import type { JobResult, RunJob, SweepRecord } from "./jobs.ts";

/** Redis could not be reached, or a sweep is missing or unfinished. */
export class QueueError extends TensLoRAError {}

/** Retries per job on errors that may pass (a full disk, a lost connection); configuration errors fail at once. */
export const ATTEMPTS = 3;
/** Back-off between those attempts: 10 s, then 20 s. */
export const BACKOFF_MS = 10_000;

const SWEEPS = `${QUEUE_PREFIX}:sweeps`;
const sweepKey = (name: string) => `${QUEUE_PREFIX}:sweep:${name}`;

/** The queue, and a plain client for the sweep records beside it. */
export interface SweepStore {
  queue: Queue<RunJob, JobResult>;
  redis: Redis;
  /** Close the queue and the Redis connection. */
  close(): Promise<void>;
}

/** A store for one-shot commands: a few reconnect attempts, then a QueueError naming the URL. */
export async function openStore(url: string, hooks: ConnectionHooks = { maxAttempts: 3 }): Promise<SweepStore> {
  const options = redisOptions(url, hooks);
  const redis = new Redis({ ...options, lazyConnect: true });
  let cause = "";
  redis.on("error", (e: Error) => (cause = e.message)); // reported by the failing command below
  const queue = new Queue<RunJob, JobResult>(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: options });
  queue.on("error", () => {});
  const close = async () => {
    await queue.close().catch(() => {});
    redis.disconnect();
  };
  try {
    await redis.connect();
    await queue.waitUntilReady();
  } catch (e) {
    await close();
    throw new QueueError(`cannot reach Redis at ${redactUrl(url)} (${cause || (e as Error).message}); start it (see docs/sweeps.md) or fix --queue`);
  }
  return { queue, redis, close };
}

/** What submitting a sweep did: jobs added, and jobs already queued or done that were kept. */
export interface SubmitReport {
  name: string;
  added: number;
  /** Already waiting or running (a re-submission). */
  pending: number;
  /** Already finished: reused, not run again. */
  finished: number;
  failed: number;
  retried: number;
}

/** Queue a sweep's jobs in Redis (idempotent: a job already queued or finished is not added twice). */
export async function submitSweep(
  { queue, redis }: SweepStore,
  record: Omit<SweepRecord, "submittedAt">,
  jobs: RunJob[],
  opts: { retryFailed?: boolean } = {},
): Promise<SubmitReport> {
  const states = await Promise.all(record.runs.map((r) => queue.getJobState(r.id)));
  const report: SubmitReport = { name: record.name, added: 0, pending: 0, finished: 0, failed: 0, retried: 0 };
  const fresh = new Map(record.runs.flatMap((r, i) => (states[i] === "unknown" ? [[r.id, jobs[i]] as const] : [])));
  // two submitters may race on the same id: BullMQ's add keeps the first job of an id, so neither duplicates
  await queue.addBulk(
    [...fresh].map(([jobId, data]) => ({
      name: data.kind,
      data,
      opts: { jobId, attempts: ATTEMPTS, backoff: { type: "exponential", delay: BACKOFF_MS }, removeOnComplete: false, removeOnFail: false },
    })),
  );
  report.added = fresh.size;
  for (const [i, s] of states.entries()) {
    if (s === "completed") report.finished++;
    else if (s === "failed") {
      if (opts.retryFailed) {
        await (await queue.getJob(record.runs[i].id))?.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
        report.retried++;
      } else report.failed++;
    } else if (s !== "unknown") report.pending++;
  }
  const submittedAt = Date.now();
  await redis
    .multi()
    .set(sweepKey(record.name), JSON.stringify({ ...record, submittedAt }))
    .zadd(SWEEPS, submittedAt, record.name)
    .exec();
  return report;
}

/** A sweep's record: the named one, or the last submitted. */
export async function readSweep({ redis: client }: SweepStore, name?: string): Promise<SweepRecord> {
  const pick = name ?? (await client.zrange(SWEEPS, -1, -1))[0];
  // a Redis that restarted without persistence (or was flushed) holds neither records nor jobs: its queued runs are gone
  const lost =
    "if one was submitted, this Redis has lost its data (restarted without persistence, or flushed) and its queued runs will not run: submit the sweep again, and run Redis with appendonly yes";
  if (!pick)
    throw new QueueError(
      `no sweep was submitted to this queue; submit one with \`tenslora sweep --config FILE --queue URL\` or \`tenslora compare --queue URL\` (${lost})`,
    );
  const raw = await client.get(sweepKey(pick));
  if (!raw) {
    const known = await client.zrange(SWEEPS, 0, -1);
    throw new QueueError(`no sweep named "${pick}" in this queue; known: ${known.join(", ") || `none (${lost})`}`);
  }
  return JSON.parse(raw) as SweepRecord;
}
