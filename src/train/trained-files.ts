/**
 * The files of a trained adapter or head as bytes: `adapter_config.json` +
 * `adapter_model.safetensors` (the head as modules_to_save), or `head.safetensors` for a linear
 * probe, plus `labels.json`. artifacts.ts writes them to a folder; the browser downloads them.
 */
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapterFiles } from "../adapters/adapter-files.ts";
import { float32Inputs, serializeSafetensors } from "../io/safetensors-bytes.ts";
import type { LoadedModel } from "../models/assemble.ts";
import { modelContext } from "../pipeline/context.ts";
import { taskOf } from "../tasks/index.ts";
import type { WeightMap } from "../nn/params.ts";

export const HEAD_FILE = "head.safetensors";
/** Class names of a saved head (adapter and head-only folders; a full model folder keeps them in config.json). */
export const LABELS_FILE = "labels.json";

/** What a run trained: the adapter and/or the head's weights, with the class names. */
export interface Trained {
  adapter?: AdapterSet;
  /** Weights that replace the model's (the head, or every weight after full fine-tuning). */
  weights: WeightMap;
}

/** The head the model ends with: trained values where there are any, else the model's own. */
export function trainedHead(model: LoadedModel, trained: Trained): WeightMap {
  return new Map(model.family.headParameters(model.config).map((k) => [k, trained.weights.get(k) ?? model.weights.get(k)!]));
}

/** An adapter (with its head) or a head alone, as file name → bytes; full fine-tuning is a model folder instead. */
export function trainedFiles(model: LoadedModel, trained: Trained): Map<string, Uint8Array> {
  const head = trainedHead(model, trained);
  const files = new Map<string, Uint8Array>();
  if (trained.adapter) {
    // a pretrained LM head is not trained with an adapter, so it is not saved with one
    const { config, weights } = adapterFiles(trained.adapter, modelContext(model), taskOf(model.family.task).trainsHeadWithAdapter ? head : new Map());
    files.set(ADAPTER_WEIGHTS, weights).set(ADAPTER_CONFIG, config);
  } else {
    files.set(HEAD_FILE, serializeSafetensors(float32Inputs(head), { base_model: model.dir }));
  }
  const { id2label, label2id } = model.rawConfig;
  // the task tells a model type with several heads which one the saved head is
  const task = model.family.task;
  if (id2label) files.set(LABELS_FILE, new TextEncoder().encode(JSON.stringify({ id2label, label2id, task }, null, 2) + "\n"));
  return files;
}
