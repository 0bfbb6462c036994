/**
 * Load a HuggingFace model folder (config.json + model.safetensors or shards) into a family's
 * config and a weight map, checking every key and shape at once (assemble.ts).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, FormatError } from "../errors.ts";
import { WEIGHTS_FILE, WEIGHTS_INDEX_FILE, openCheckpoint, readJsonFile } from "../io/checkpoint.ts";
import { hubCacheDir, looksLikeRepoId, resolveModelFromCache } from "../io/hub-cache.ts";
import { type AnyFamily, type LoadedModel, type LoadOptions, familyOf, modelFromTensors } from "./assemble.ts";
import type { Task } from "./types.ts";

export { type AnyFamily, FAMILIES, type FamilyEntry, type LoadedModel, type LoadOptions, defaultHead, familyOf, familyTasks } from "./assemble.ts";

/** A model folder's config.json, read once per job: the folder (a Hub id resolved to the cache), the object, and its family's head. */
export interface ModelConfigFile {
  dir: string;
  raw: Record<string, unknown>;
  family: AnyFamily;
}

/** config.json of a model folder and its family, with the head for `task` when given. */
export function readModelConfig(dir: string, task?: Task): ModelConfigFile {
  if (looksLikeRepoId(dir) && resolveModelFromCache(dir) === dir) {
    throw new ConfigError(
      `--model ${dir}: no such folder, and no complete download of the Hub repository "${dir}" in the Hugging Face cache (${hubCacheDir()}); run: tenslora download ${dir}`,
    );
  }
  const resolved = resolveModelFromCache(dir);
  const path = join(resolved, "config.json");
  const raw = readJsonFile(path, "model config") as Record<string, unknown>;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new FormatError(`${path}: must hold a JSON object`);
  return { dir: resolved, raw, family: familyOf(raw, path, task) };
}

/**
 * `spec` is a model folder, a Hub repo id ("org/name") found in the Hugging Face cache, or a
 * folder's config.json already read. The checkpoint is read tensor by tensor, so with
 * `opts.baseDtype` f16 / int8 / int4 the float32 model never exists whole.
 */
export function loadModel(spec: string | ModelConfigFile, opts: LoadOptions = {}): LoadedModel {
  const { dir, raw } = typeof spec === "string" ? readModelConfig(spec) : spec;
  // errors name the checkpoint file (or the shard index), not just the folder
  const weightsPath = join(dir, existsSync(join(dir, WEIGHTS_FILE)) ? WEIGHTS_FILE : WEIGHTS_INDEX_FILE);
  const checkpoint = openCheckpoint(dir);
  try {
    return modelFromTensors(raw, checkpoint.tensors, { dir, configPath: join(dir, "config.json"), weightsPath }, opts);
  } finally {
    checkpoint.close();
  }
}
