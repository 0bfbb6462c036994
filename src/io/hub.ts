/**
 * Fetching a model folder from the HuggingFace Hub for users who have none on disk. It ends in
 * an ordinary local folder (config.json, weights, tokenizer/preprocessor files) that every other
 * command reads; nothing else in the project touches the network.
 */
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { FormatError, TensLoRAError } from "../errors.ts";
import { readJsonFile } from "./checkpoint.ts";

export class DownloadError extends TensLoRAError {}

/** Files a classification model folder may have; the weights are found from the index when sharded. */
const OPTIONAL = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json", "vocab.json", "merges.txt"];

export interface DownloadOptions {
  revision?: string;
  /** Defaults to https://huggingface.co (or $HF_ENDPOINT). */
  endpoint?: string;
  token?: string;
  log?: (s: string) => void;
}

async function fetchTo(url: string, path: string, token: string | undefined, required: boolean): Promise<boolean> {
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, redirect: "follow" });
  } catch (e) {
    throw new DownloadError(`cannot reach ${new URL(url).host} (${(e as Error).message}); check the network, or copy the model folder to disk and pass its path`);
  }
  if (res.status === 404 && !required) return false;
  if (!res.ok || !res.body) throw new DownloadError(`${url}: HTTP ${res.status} ${res.statusText}${res.status === 401 ? " (private or gated: set HF_TOKEN)" : ""}`);
  const tmp = `${path}.part-${process.pid}`;
  await pipeline(Readable.fromWeb(res.body as never), createWriteStream(tmp));
  renameSync(tmp, path);
  return true;
}

/** Download `repo` (e.g. "google/vit-base-patch16-224") into `dir`; files already there are kept. */
export async function downloadModel(repo: string, dir: string, o: DownloadOptions = {}): Promise<string> {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) throw new DownloadError(`"${repo}" is not a Hub repository id such as google/vit-base-patch16-224`);
  const base = `${o.endpoint ?? process.env.HF_ENDPOINT ?? "https://huggingface.co"}/${repo}/resolve/${encodeURIComponent(o.revision ?? "main")}`;
  const token = o.token ?? process.env.HF_TOKEN;
  mkdirSync(dir, { recursive: true });
  const get = async (file: string, required: boolean) => {
    const path = join(dir, file);
    if (existsSync(path)) return true;
    o.log?.(`downloading ${repo}/${file}`);
    return fetchTo(`${base}/${file}`, path, token, required);
  };
  await get("config.json", true);
  if (!(await get("model.safetensors", false))) {
    if (!(await get("model.safetensors.index.json", false))) {
      rmSync(join(dir, "config.json"), { force: true });
      throw new DownloadError(`${repo} has no model.safetensors (or sharded index); only safetensors checkpoints are supported`);
    }
    const index = readJsonFile(join(dir, "model.safetensors.index.json"), "weight index") as { weight_map?: Record<string, string> };
    if (!index.weight_map) throw new FormatError(`${repo}: model.safetensors.index.json has no weight_map`);
    for (const shard of new Set(Object.values(index.weight_map))) await get(shard, true);
  }
  for (const f of OPTIONAL) await get(f, false);
  return dir;
}
