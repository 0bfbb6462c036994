/**
 * Training checkpoints: parameters, optimiser moments, step and best-so-far. Each save is a new
 * folder `checkpoint-<step>/`, written as `.tmp-checkpoint-<step>-<pid>/` (files fsynced), renamed
 * into place in one step and the run folder fsynced; only then are older checkpoints removed
 * (renamed to `.trash-*` first). So at every instant at least one complete `checkpoint-<step>/`
 * exists once the first save finished, a kill at any point leaves nothing that looks complete
 * but is not, and resume takes the newest checkpoint that loads.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FormatError, TensLoRAError } from "../errors.ts";
import { type SafetensorsFile, isPlainObject, readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { toFloat32 } from "../io/dtype-convert.ts";
import type { AdamWScalars } from "./optim.ts";

export interface TrainState {
  /** Optimiser steps done. */
  step: number;
  /** The selected evaluation; `test` = the test metric there (absent in checkpoints without it). */
  best: { value: number; step: number; test?: number } | null;
  /** The best test metric over evaluations so far. */
  bestTest?: { value: number; step: number } | null;
  optimizer: AdamWScalars;
  /** A hash of the resolved run config: resuming with another config is refused. */
  configHash: string;
}

export interface Checkpoint {
  state: TrainState;
  /** params.<name>, exp_avg.<name>, exp_avg_sq.<name>. */
  tensors: Record<string, Float32Array>;
}

/** Writing to disk failed (full disk, quota, read-only, permissions). */
export class DiskError extends TensLoRAError {}

const TENSORS = "state.safetensors";
const STATE = "state.json";
const NAME = /^checkpoint-(\d+)$/;
/** Leftovers of interrupted saves and removals (and of the single-folder layout's renames). */
const STALE = /^(?:\.tmp-checkpoint-|\.trash-checkpoint-|checkpoint\.(?:tmp|old)-)/;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The complete checkpoints of a run folder, newest first. */
export function listCheckpoints(outDir: string): { step: number; dir: string }[] {
  if (!existsSync(outDir)) return [];
  return readdirSync(outDir)
    .map((name) => NAME.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: join(outDir, m[0]) }))
    .sort((a, b) => b.step - a.step);
}

/** Remove what interrupted saves left behind; call only while holding the run folder's lock. */
export function removeStaleCheckpointFiles(outDir: string): string[] {
  const stale = existsSync(outDir) ? readdirSync(outDir).filter((n) => STALE.test(n)) : [];
  for (const n of stale) rmSync(join(outDir, n), { recursive: true, force: true });
  return stale;
}

function diskError(e: unknown, what: string, outDir: string): never {
  const code = (e as NodeJS.ErrnoException).code;
  if (!code) throw e;
  const last = listCheckpoints(outDir)[0];
  const reason = code === "ENOSPC" ? "no space left on device" : code === "EDQUOT" ? "disk quota exceeded" : code;
  throw new DiskError(
    `cannot write ${what} (${reason}); ` +
      (last
        ? `the last good checkpoint ${last.dir} (step ${last.step}) is intact: free space, then continue with --resume ${outDir}`
        : `no checkpoint was written yet: free space and start again`),
  );
}

/** Save `ckpt` as `outDir/checkpoint-<step>/` and drop the older ones; returns its folder. */
export function saveCheckpoint(outDir: string, ckpt: Checkpoint): string {
  const { step } = ckpt.state;
  const dir = join(outDir, `checkpoint-${step}`);
  if (existsSync(dir)) return dir; // the same step saved twice holds the same state
  const tmp = join(outDir, `.tmp-checkpoint-${step}-${process.pid}`);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const tensors = Object.fromEntries(Object.entries(ckpt.tensors).map(([k, data]) => [k, { dtype: "F32" as const, shape: [data.length], data }]));
    writeSafetensors(join(tmp, TENSORS), tensors);
    const fd = openSync(join(tmp, STATE), "w");
    try {
      writeFileSync(fd, JSON.stringify(ckpt.state, null, 2));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    fsyncDir(tmp);
    renameSync(tmp, dir);
    fsyncDir(outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    diskError(e, `checkpoint ${dir}`, outDir);
  }
  for (const old of listCheckpoints(outDir).filter((c) => c.step < step)) {
    const trash = join(outDir, `.trash-checkpoint-${old.step}-${process.pid}`);
    renameSync(old.dir, trash);
    rmSync(trash, { recursive: true, force: true });
  }
  return dir;
}

function checkState(s: unknown, dir: string): TrainState {
  const ok =
    isPlainObject(s) &&
    Number.isSafeInteger(s.step) &&
    (s.step as number) >= 0 &&
    typeof s.configHash === "string" &&
    isPlainObject(s.optimizer) &&
    (s.best === null || (isPlainObject(s.best) && typeof s.best.value === "number" && Number.isSafeInteger(s.best.step)));
  if (!ok)
    throw new FormatError(
      `${join(dir, STATE)}: expected { step, best, optimizer, configHash } as a run writes it; the checkpoint is damaged, resume from another one or start again`,
    );
  return s as unknown as TrainState;
}

export function loadCheckpoint(dir: string): Checkpoint {
  if (!existsSync(join(dir, STATE))) throw new FormatError(`${dir} holds no checkpoint (${STATE} is missing); was the run saved?`);
  return checkpointFrom(dir, readJsonFile(join(dir, STATE), "checkpoint state"), readSafetensors(join(dir, TENSORS)));
}

/** A checkpoint from its parsed parts (`dir` names them in errors). */
export function checkpointFrom(dir: string, s: unknown, file: SafetensorsFile): Checkpoint {
  const state = checkState(s, dir);
  const tensors: Record<string, Float32Array> = {};
  for (const [k, e] of file.tensors) tensors[k] = toFloat32(e, k).slice();
  if (!tensors.params) throw new FormatError(`${join(dir, TENSORS)} holds no "params" tensor; the checkpoint is damaged`);
  return { state, tensors };
}

/** The newest checkpoint of `outDir` that loads; damaged ones are reported through `warn` and skipped. */
export function loadLatestCheckpoint(outDir: string, warn: (s: string) => void = () => {}): Checkpoint & { dir: string } {
  const found = listCheckpoints(outDir);
  for (const c of found) {
    try {
      return { ...loadCheckpoint(c.dir), dir: c.dir };
    } catch (e) {
      if (!(e instanceof TensLoRAError)) throw e;
      warn(`skipping ${c.dir}: ${e.message}`);
    }
  }
  throw new FormatError(
    `${outDir} holds no ${found.length ? "loadable " : ""}checkpoint (checkpoint-<step>/ folders are written every --save-every steps and at a stop); start a new run with --overwrite or another --out`,
  );
}
