/**
 * Where a training run keeps what outlives a step: the metrics log, the checkpoint it resumes
 * from, and the best and last trained weights. run-folder-store.ts keeps them in a folder (the CLI);
 * `memoryRunStore` keeps them in memory (the browser, where the page downloads what it wants).
 */
import { FormatError } from "../errors.ts";
import type { LoadedModel } from "../models/assemble.ts";
import type { Trained } from "./trained-files.ts";
import type { Checkpoint } from "./checkpoint.ts";

export type MetricsRecord = { type: "train" | "eval"; step: number } & Record<string, unknown>;

/** Where a training run keeps its metrics log, checkpoints and trained weights (a folder in Node, memory in the browser). */
export interface RunStore {
  /** Where the run lives, for messages ("runs/x", "memory"). */
  readonly location: string;
  /**
   * Start the metrics log: empty, or (resuming) keeping the records up to `step` and dropping
   * checkpoints newer than it (they did not load).
   */
  startLog(resumeAt?: number): void;
  /** Append one record (a step or an evaluation) to the metrics log. */
  log(record: MetricsRecord): void;
  /** Where the newest checkpoint lives, for messages; undefined before the first. */
  lastCheckpoint(): string | undefined;
  /** Save a checkpoint; returns where it went. */
  saveCheckpoint(ckpt: Checkpoint): string;
  /** The newest checkpoint that loads (damaged ones are reported to `warn` and skipped), and where it was. */
  loadCheckpoint(warn?: (s: string) => void): Checkpoint & { dir: string };
  /** Keep the trained weights of the best or the last step. */
  saveTrained(name: "best" | "last", model: LoadedModel, trained: Trained): void;
}

/** A RunStore in memory, whose records and trained weights the caller reads back. */
export interface MemoryRunStore extends RunStore {
  readonly records: MetricsRecord[];
  readonly trained: Map<"best" | "last", Trained>;
}

const copyCheckpoint = (c: Checkpoint): Checkpoint => ({
  state: structuredClone(c.state),
  tensors: Object.fromEntries(Object.entries(c.tensors).map(([k, v]) => [k, v.slice()])),
});

/** A RunStore that keeps everything in memory, for the browser and tests. */
export function memoryRunStore(): MemoryRunStore {
  let records: MetricsRecord[] = [];
  let ckpt: Checkpoint | undefined;
  const trained = new Map<"best" | "last", Trained>();
  const where = (c: Checkpoint) => `memory (checkpoint at step ${c.state.step})`;
  return {
    location: "memory",
    get records() {
      return records;
    },
    trained,
    startLog: (resumeAt) => {
      records = resumeAt === undefined ? [] : records.filter((r) => r.step <= resumeAt);
    },
    log: (r) => void records.push(r),
    lastCheckpoint: () => ckpt && where(ckpt),
    saveCheckpoint: (c) => {
      ckpt = copyCheckpoint(c);
      return where(ckpt);
    },
    loadCheckpoint: () => {
      if (!ckpt) throw new FormatError("this run saved no checkpoint in memory; start it again without resume");
      return { ...copyCheckpoint(ckpt), dir: where(ckpt) };
    },
    saveTrained: (name, _model, t) => void trained.set(name, t),
  };
}
