/**
 * Training checkpoints: parameters, optimiser moments, step and best-so-far, written atomically
 * (a temporary folder renamed into place), so a crash or a signal never leaves a torn state.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { toFloat32 } from "../io/dtype-convert.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
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

const TENSORS = "state.safetensors";
const STATE = "state.json";

export function saveCheckpoint(dir: string, ckpt: Checkpoint): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const tensors = Object.fromEntries(
    Object.entries(ckpt.tensors).map(([k, data]) => [k, { dtype: "F32" as const, shape: [data.length], data }]),
  );
  writeSafetensors(join(tmp, TENSORS), tensors);
  writeFileSync(join(tmp, STATE), JSON.stringify(ckpt.state, null, 2));
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

export function loadCheckpoint(dir: string): Checkpoint {
  const statePath = join(dir, STATE);
  if (!existsSync(statePath)) throw new FormatError(`${dir} holds no checkpoint (${STATE} is missing); was the run saved?`);
  const state = readJsonFile(statePath, "checkpoint state") as TrainState;
  const file = readSafetensors(join(dir, TENSORS));
  const tensors: Record<string, Float32Array> = {};
  for (const [k, e] of file.tensors) tensors[k] = toFloat32(e, k).slice();
  return { state, tensors };
}
