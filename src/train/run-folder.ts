/**
 * A run folder belongs to one `train` at a time: a lock file taken atomically (owner pid; a dead
 * owner's lock is taken over). A new run refuses a folder that already holds files unless told
 * to overwrite them; a resumed run needs a checkpoint. metrics.jsonl is cut back to the resumed
 * checkpoint with a torn last line (a kill during an append) tolerated. A new run that fails before
 * its first checkpoint takes back what it wrote, so the corrected re-run finds the folder as it was.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, FormatError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { type Lock, acquireLock } from "../io/lock.ts";
import { listCheckpoints, removeStaleCheckpointFiles } from "./checkpoint.ts";

export type RunMode = "new" | "resume" | "overwrite";

export const LOCK = ".lock";

/** A taken run folder: its lock, and how it was taken. */
export interface RunFolder extends Lock {
  dir: string;
  mode: RunMode;
  /** The folder did not exist: the run made it. */
  created: boolean;
}

/** Take `dir` for a run; the returned lock is released when the run ends (or the process exits). */
export function openRunFolder(dir: string, mode: RunMode): RunFolder {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new ConfigError(`--out ${dir} is a file; pass a folder`);
  if (mode === "resume" && !existsSync(dir)) throw new ConfigError(`--resume ${dir}: no such run folder`);
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const lock = acquireLock(join(dir, LOCK), `run folder ${dir}`);
  try {
    const held = readdirSync(dir).filter((n) => n !== LOCK);
    if (mode === "new" && held.length > 0) {
      const shown = held.slice(0, 5).join(", ") + (held.length > 5 ? ", …" : "");
      throw new ConfigError(
        `--out ${dir} already holds files (${shown}); continue that run with --resume ${dir}, replace it with --overwrite, or pass another --out`,
      );
    }
    if (mode === "resume" && listCheckpoints(dir).length === 0) {
      throw new ConfigError(`--resume ${dir}: the folder holds no checkpoint-<step>/ to continue from; start a new run with --overwrite or another --out`);
    }
    if (mode === "overwrite") for (const n of held) rmSync(join(dir, n), { recursive: true, force: true });
    removeStaleCheckpointFiles(dir);
    return { ...lock, dir, mode, created };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/**
 * Release a run that failed. A new (or overwriting) run that failed before its first logged step
 * (a setting or data error found after the folder was taken) leaves nothing to resume or read, and
 * the folder held nothing of anyone else once taken: what the run wrote is removed, and the folder
 * too if the run made it, so the corrected run may use the same --out. A run that trained keeps its
 * metrics.jsonl, the record a user reads to see why it failed (a loss gone NaN); a resumed run's
 * folder, or one holding a checkpoint, is kept as it is.
 */
export function releaseFailedRun(folder: RunFolder): void {
  const metrics = join(folder.dir, "metrics.jsonl");
  const trained = existsSync(metrics) && statSync(metrics).size > 0;
  const discard = folder.mode !== "resume" && !trained && listCheckpoints(folder.dir).length === 0;
  try {
    if (discard) for (const n of readdirSync(folder.dir)) if (n !== LOCK) rmSync(join(folder.dir, n), { recursive: true, force: true });
  } finally {
    folder.release();
  }
  if (discard && folder.created && readdirSync(folder.dir).length === 0) rmdirSync(folder.dir);
}

/**
 * Keep the records of metrics.jsonl up to `step` (those after it are replayed by the resumed
 * run). A last line that does not parse is a torn append and is dropped; a bad line before the
 * end is damage and an error. Rewritten through a temporary file, so a kill here loses nothing.
 */
export function keepMetricsUpTo(path: string, step: number): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, "utf8").split("\n");
  const kept: string[] = [];
  lines.forEach((line, i) => {
    if (!line) return;
    let rec: { step?: unknown };
    try {
      rec = JSON.parse(line);
    } catch {
      if (lines.slice(i + 1).some(Boolean))
        throw new FormatError(`${path}: line ${i + 1} is not JSON (${line.slice(0, 60)}); the log is damaged, restore it or start the run again`);
      return; // the torn last append of a killed run
    }
    if (typeof rec?.step === "number" && rec.step <= step) kept.push(line);
  });
  writeFileAtomic(path, kept.map((l) => `${l}\n`).join(""));
}
