/**
 * The weights of a HuggingFace model folder: `model.safetensors`, or the shards that
 * `model.safetensors.index.json` lists (`{ metadata, weight_map: { key: shardFile } }`), as
 * float32 whatever the stored float dtype; and JSON files (config.json, …) with clear errors.
 *
 * @example
 * const config = readJsonFile(join(dir, "config.json"), "model config");
 * const tensors = loadCheckpointTensors(dir); // Map<key, { shape, dtype, data: Float32Array }>
 * const opened = openCheckpoint(dir); // the same keys, each tensor read when asked
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { FormatError } from "../errors.ts";
import { toFloat32 } from "./dtype-convert.ts";
import { isPlainObject, openSafetensors, withCause, type OpenedSafetensors, type SafetensorsDtype, type StoredTensor } from "./safetensors.ts";
import { formatProblems } from "./weight-map.ts";

export const WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

/** A checkpoint tensor as float32; `dtype` is what the file stored. */
export interface CheckpointTensor {
  shape: number[];
  dtype: SafetensorsDtype;
  data: Float32Array;
}

/** A checkpoint tensor not read yet: its shape and stored dtype, its float32 values from disk on each `read()`. */
export interface LazyCheckpointTensor {
  shape: number[];
  dtype: SafetensorsDtype;
  read(): Float32Array;
}

/** A model folder's checkpoint opened for reading tensor by tensor; `close()` releases its files. */
export interface OpenedCheckpoint {
  tensors: Map<string, LazyCheckpointTensor>;
  close(): void;
}

export interface ShardedIndex {
  metadata: Record<string, unknown> | undefined;
  /** Tensor key → shard file name (in the same folder). */
  weightMap: Map<string, string>;
  /** The distinct shard file names, sorted. */
  shards: string[];
}

/** Parse a JSON file; `what` ("model config", …) names it in the FormatError when it fails. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const message = `${what} ${path} cannot be read (${code}); check the path` + (code === "ENOENT" ? "" : " and its permissions");
    throw withCause(new FormatError(message), err);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = `${what} ${path} must be valid JSON, but it does not parse (${(err as Error).message}); ` + `restore or regenerate the file`;
    throw withCause(new FormatError(message), err);
  }
}

/** Read and validate `model.safetensors.index.json` of a sharded checkpoint folder. */
export function readShardedIndex(dir: string): ShardedIndex {
  const path = join(dir, WEIGHTS_INDEX_FILE);
  const json = readJsonFile(path, "sharded checkpoint index");
  const fail = (rule: string) => new FormatError(`${path}: ${rule}`);
  if (!isPlainObject(json) || !isPlainObject(json.weight_map)) {
    throw fail(`expected an object with a "weight_map" object of { tensor key: shard file }`);
  }
  const { metadata } = json;
  if (metadata !== undefined && !isPlainObject(metadata)) {
    throw fail(`"metadata" must be an object when present, found ${JSON.stringify(metadata)}`);
  }
  const weightMap = new Map<string, string>();
  for (const [key, shard] of Object.entries(json.weight_map)) {
    // A shard is a file beside the index: a path could reach outside the model folder.
    if (typeof shard !== "string" || basename(shard) !== shard || shard === "..") {
      throw fail(`weight_map["${key}"] must name a shard file in the same folder, ` + `found ${JSON.stringify(shard)}`);
    }
    weightMap.set(key, shard);
  }
  return { metadata, weightMap, shards: [...new Set(weightMap.values())].sort() };
}

/**
 * Open every shard of a sharded checkpoint. Each tensor must sit in the shard the index names
 * and each indexed key must be found; all disagreements are reported in one FormatError.
 */
export function openShardedSafetensors(dir: string): { tensors: Map<string, StoredTensor>; close(): void } {
  const index = readShardedIndex(dir);
  const opened: OpenedSafetensors[] = [];
  const close = () => {
    for (const o of opened) o.close();
  };
  try {
    const tensors = new Map<string, StoredTensor>();
    const misplaced: string[] = [];
    const foundIn = new Map<string, string>();
    for (const shard of index.shards) {
      const file = openSafetensors(join(dir, shard));
      opened.push(file);
      for (const [key, entry] of file.tensors) {
        foundIn.set(key, shard);
        const named = index.weightMap.get(key);
        if (named === shard) tensors.set(key, entry);
        else if (named === undefined) misplaced.push(`"${key}" is in ${shard} but not in the index`);
        else misplaced.push(`"${key}" is in ${shard} but the index places it in ${named}`);
      }
    }
    const absent = [...index.weightMap].filter(([key]) => !foundIn.has(key)).map(([key, shard]) => `"${key}" is not in ${shard}, the shard the index names`);
    if (misplaced.length + absent.length > 0) {
      throw new FormatError(
        `${join(dir, WEIGHTS_INDEX_FILE)}: each tensor must be in the shard the index names, but ` +
          `${misplaced.length + absent.length} are not:\n` +
          formatProblems([
            ["absent", absent],
            ["misplaced", misplaced],
          ]) +
          `\nRe-save the checkpoint or regenerate the index from the shards.`,
      );
    }
    return { tensors, close };
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * The tensors of a HuggingFace model folder (`model.safetensors` if present, else the sharded
 * index), each read from disk and converted to float32 when asked: F16, BF16 and F64 are
 * converted. Holding one tensor at a time is what lets a quantized base load without the float32
 * model ever existing whole.
 */
export function openCheckpoint(dir: string): OpenedCheckpoint {
  const single = join(dir, WEIGHTS_FILE);
  let file: { tensors: Map<string, StoredTensor>; close(): void };
  if (existsSync(single)) file = openSafetensors(single);
  else if (existsSync(join(dir, WEIGHTS_INDEX_FILE))) file = openShardedSafetensors(dir);
  else {
    const found = existsSync(dir) ? `it holds [${readdirSync(dir).join(", ")}]` : "it is missing";
    throw new FormatError(
      `${dir}: a HuggingFace model folder must hold ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}, ` +
        `but ${found}; save the model with safe_serialization=True (PyTorch .bin is not read)`,
    );
  }
  const tensors = new Map<string, LazyCheckpointTensor>();
  for (const [key, stored] of file.tensors) {
    tensors.set(key, { shape: stored.shape, dtype: stored.dtype, read: () => toFloat32(stored.read(), `${dir}: tensor "${key}"`) });
  }
  return { tensors, close: file.close };
}

/** All tensors of a HuggingFace model folder as float32 (openCheckpoint, every tensor read). */
export function loadCheckpointTensors(dir: string): Map<string, CheckpointTensor> {
  const opened = openCheckpoint(dir);
  try {
    return new Map([...opened.tensors].map(([key, t]) => [key, { shape: t.shape, dtype: t.dtype, data: t.read() }]));
  } finally {
    opened.close();
  }
}
