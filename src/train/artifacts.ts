/**
 * What a run leaves behind: an adapter folder (LoRA in PEFT's format, TensLoRA in ours, the head
 * as modules_to_save), a head-only file for linear probes, or a full HF model folder for full
 * fine-tuning; and the matching loader for `eval`, `merge` and `infer`.
 */
import { recordedBase } from "../adapters/format.ts";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ADAPTER_CONFIG, loadAdapter } from "../adapters/format.ts";
import { FormatError } from "../errors.ts";
import { WEIGHTS_FILE, loadCheckpointTensors } from "../io/checkpoint.ts";
import { float32Inputs, readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { toFloat32 } from "../io/dtype-convert.ts";
import { modelContext } from "../pipeline/context.ts";
import { HEAD_FILE, type Trained, trainedFiles } from "./trained-files.ts";
import type { LoadedModel } from "../models/load.ts";
import type { WeightMap } from "../nn/params.ts";
import { describeNonFinite } from "../tensor/finite.ts";

export { HEAD_FILE, LABELS_FILE, type Trained } from "./trained-files.ts";

/** Write a HuggingFace model folder (config.json + model.safetensors). */
export function saveModelFolder(dir: string, rawConfig: Record<string, unknown>, weights: WeightMap): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, WEIGHTS_FILE), float32Inputs(weights), { format: "pt" });
  writeFileAtomic(join(dir, "config.json"), new TextEncoder().encode(JSON.stringify(rawConfig, null, 2) + "\n"));
}

/** Write a run's trained weights (adapter and head) to a folder, each file atomically. */
export function saveTrained(dir: string, model: LoadedModel, trained: Trained): void {
  mkdirSync(dir, { recursive: true });
  if (trained.weights.size > model.family.headParameters(model.config).length && !trained.adapter) {
    saveModelFolder(dir, model.rawConfig, new Map([...model.weights, ...trained.weights]));
    return;
  }
  // base_model_name_or_path records where the model is, not the path it was given by
  for (const [name, bytes] of trainedFiles({ ...model, dir: recordedBase(model.dir) ?? model.dir }, trained)) writeFileAtomic(join(dir, name), bytes);
}

/** Load what `saveTrained` (or PEFT) wrote: an adapter folder, a head file, or a full model folder. */
export function loadTrained(dir: string, model: LoadedModel): Trained {
  const trained = readTrained(dir, model);
  // an adapter's tensors and head were checked as its files were read
  for (const [k, t] of trained.adapter ? [] : trained.weights) {
    const bad = describeNonFinite(t.data);
    if (bad)
      throw new FormatError(`${dir}: tensor "${k}" holds ${bad}; the run diverged or the file is damaged, use another checkpoint (e.g. best/) or retrain`);
  }
  return trained;
}

function readTrained(dir: string, model: LoadedModel): Trained {
  if (existsSync(join(dir, ADAPTER_CONFIG))) {
    const { set, head } = loadAdapter(dir, modelContext(model));
    return { adapter: set, weights: head };
  }
  if (existsSync(join(dir, HEAD_FILE))) {
    const weights: WeightMap = new Map();
    const shapes = model.family.parameterShapes(model.config);
    for (const [k, e] of readSafetensors(join(dir, HEAD_FILE)).tensors) {
      const want = shapes.get(k);
      if (!want || want.join() !== e.shape.join()) {
        throw new FormatError(`${join(dir, HEAD_FILE)}: "${k}" [${e.shape}] does not fit the model (expected ${want ? `[${want}]` : "no such parameter"})`);
      }
      weights.set(k, { shape: e.shape, data: toFloat32(e, k) });
    }
    return { weights };
  }
  if (existsSync(join(dir, WEIGHTS_FILE))) return { weights: new Map([...loadCheckpointTensors(dir)].map(([k, t]) => [k, { shape: t.shape, data: t.data }])) };
  throw new FormatError(`${dir} holds no adapter (${ADAPTER_CONFIG}), head (${HEAD_FILE}) or model (${WEIGHTS_FILE})`);
}
