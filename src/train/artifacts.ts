/**
 * What a run leaves behind: an adapter folder (LoRA in PEFT's format, TensLoRA in ours, the head
 * as modules_to_save), a head-only file for linear probes, or a full HF model folder for full
 * fine-tuning; and the matching loader for `eval`, `merge` and `infer`.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { ADAPTER_CONFIG, loadAdapter, saveAdapter } from "../adapters/format.ts";
import { FormatError } from "../errors.ts";
import { WEIGHTS_FILE, loadCheckpointTensors } from "../io/checkpoint.ts";
import { float32Inputs, readSafetensors, writeFileAtomic, writeSafetensors } from "../io/safetensors.ts";
import { toFloat32 } from "../io/dtype-convert.ts";
import { modelContext } from "../models/context.ts";
import type { LoadedModel } from "../models/load.ts";
import type { WeightMap } from "../nn/params.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import { taskOf } from "../tasks/index.ts";

export const HEAD_FILE = "head.safetensors";

/** Write a HuggingFace model folder (config.json + model.safetensors). */
export function saveModelFolder(dir: string, rawConfig: Record<string, unknown>, weights: WeightMap): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, WEIGHTS_FILE), float32Inputs(weights), { format: "pt" });
  writeFileAtomic(join(dir, "config.json"), new TextEncoder().encode(JSON.stringify(rawConfig, null, 2) + "\n"));
}

export interface Trained {
  adapter?: AdapterSet;
  /** Weights that replace the model's (the head, or every weight after full fine-tuning). */
  weights: WeightMap;
}

/** Class names of a saved head (adapter and head-only folders; a full model folder keeps them in config.json). */
export const LABELS_FILE = "labels.json";

export function saveTrained(dir: string, model: LoadedModel, trained: Trained): void {
  mkdirSync(dir, { recursive: true });
  const head = new Map(model.family.headParameters(model.config).map((k) => [k, trained.weights.get(k) ?? model.weights.get(k)!]));
  if (trained.weights.size > head.size && !trained.adapter) {
    saveModelFolder(dir, model.rawConfig, new Map([...model.weights, ...trained.weights]));
    return;
  }
  // a pretrained LM head is not trained with an adapter, so it is not saved with one
  if (trained.adapter) saveAdapter(dir, trained.adapter, modelContext(model), taskOf(model.family.task).trainsHeadWithAdapter ? head : new Map());
  else writeSafetensors(join(dir, HEAD_FILE), float32Inputs(head), { base_model: model.dir });
  const { id2label, label2id } = model.rawConfig;
  if (id2label) writeFileAtomic(join(dir, LABELS_FILE), new TextEncoder().encode(JSON.stringify({ id2label, label2id }, null, 2) + "\n"));
}

/** Load what `saveTrained` (or PEFT) wrote: an adapter folder, a head file, or a full model folder. */
export function loadTrained(dir: string, model: LoadedModel): Trained {
  const trained = readTrained(dir, model);
  for (const [k, t] of [...(trained.adapter?.tensors ?? []), ...trained.weights]) {
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
