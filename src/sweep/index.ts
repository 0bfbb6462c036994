/**
 * Sweeps on Redis (`tenslora/sweep`): kept out of the main entry point because BullMQ and ioredis
 * take a noticeable time to load, which every other command would pay.
 */
export { QUEUE_NAME, QUEUE_PREFIX, redisOptions, redactUrl } from "./connection.ts";
export { compareJobs, sweepJobs, sweepName, parseSweepFile, jobId, type RunJob, type JobResult, type SweepRecord, type SweepRun } from "./jobs.ts";
export { openStore, submitSweep, readSweep, QueueError, type SweepStore, type SubmitReport } from "./queue.ts";
export { sweepStatus, statusTable, type SweepStatus, type RunStatus } from "./status.ts";
export { sweepResults } from "./results.ts";
export { startWorker, type WorkerLog, type WorkerSettings, type JobProgress } from "./worker.ts";
