/**
 * The Hugging Face cache on disk, in the layout Python's `huggingface_hub` (and so `transformers`)
 * uses: `$HF_HUB_CACHE` or `$HF_HOME/hub` or `~/.cache/huggingface/hub`, then
 * `models--<org>--<name>/{blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>,
 * refs/<revision>}`. A model a user already downloaded in Python is found here by its repo id,
 * offline. Every name that goes into a path (repo id, revision, commit, etag, file name) is
 * checked first, whether the user typed it or a server sent it.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { getHFHubCachePath, getRepoFolderName } from "@huggingface/hub";
import { TensLoRAError } from "../errors.ts";
import { WEIGHTS_FILE, WEIGHTS_INDEX_FILE, readShardedIndex } from "./checkpoint.ts";

/** The Hub refused, a transfer failed, or a server sent something that cannot be used safely. */
export class DownloadError extends TensLoRAError {}

/** The HuggingFace hub cache folder (HF_HUB_CACHE, HF_HOME, or ~/.cache/huggingface/hub), shared with Python tools. */
export function hubCacheDir(): string {
  return getHFHubCachePath();
}

/** huggingface_hub's rule: `[org/]name`, word characters, `-` and `.`, no `--` or `..`, ≤ 96 per part. */
const REPO_ID = /^(?:[\w.-]{1,96}\/)?[\w.-]{1,96}$/;

export function checkRepoId(repo: string): string {
  const bad = !REPO_ID.test(repo) || repo.includes("..") || repo.includes("--") || repo.split("/").some((p) => /^[.-]|[.-]$/.test(p));
  if (bad) {
    throw new DownloadError(
      `"${repo}" is not a Hub repository id: use org/name with letters, digits, "_", "-" and "." (no "..", "--", or "." / "-" at either end), e.g. google/vit-base-patch16-224`,
    );
  }
  return repo;
}

/** A relative path inside a repository (or a revision such as refs/pr/1): no "..", ".", empty part, absolute path, backslash or control character. */
export function isSafeRelativePath(name: string): boolean {
  if (typeof name !== "string" || name === "" || name.length > 1000) return false;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\\\x00-\x1f\x7f]/.test(name) || name.startsWith("/") || /^[A-Za-z]:/.test(name)) return false;
  return name.split("/").every((p) => p !== "" && p !== "." && p !== "..");
}

export function checkRevision(revision: string): string {
  if (!isSafeRelativePath(revision) || /[?#%]/.test(revision)) {
    throw new DownloadError(`--revision "${revision}" is not a branch, tag or commit name (no "..", leading "/", "?", "#", "%" or backslash)`);
  }
  return revision;
}

const COMMIT = /^[0-9a-f]{40}$/;
export const isCommit = (s: string) => COMMIT.test(s);

/** A blob name is a git sha1 or an LFS sha256; anything else from a server is refused. */
export const isEtag = (s: string) => /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(s);

export function repoFolder(cache: string, repo: string): string {
  return join(cache, getRepoFolderName({ type: "model", name: checkRepoId(repo) }));
}

/** True when `dir` holds config.json and every weight file (single, or the index and all its shards). */
export function isCompleteModelFolder(dir: string): boolean {
  const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
  if (!isFile(join(dir, "config.json"))) return false;
  if (isFile(join(dir, WEIGHTS_FILE))) return true;
  if (!isFile(join(dir, WEIGHTS_INDEX_FILE))) return false;
  try {
    return readShardedIndex(dir).shards.every((s) => isFile(join(dir, s)));
  } catch {
    return false; // a torn or hostile index: the folder is not usable as it is, a download replaces it
  }
}

/** The complete cached snapshot of `repo` at `revision` (branch, tag or commit), or undefined; never touches the network. */
export function cachedSnapshot(repo: string, revision = "main", cache = hubCacheDir()): string | undefined {
  const folder = repoFolder(cache, repo);
  let commit = checkRevision(revision);
  if (!isCommit(commit)) {
    const ref = join(folder, "refs", revision);
    if (!existsSync(ref)) return undefined;
    commit = readFileSync(ref, "utf8").trim();
    if (!isCommit(commit)) return undefined;
  }
  const snapshot = join(folder, "snapshots", commit);
  return isCompleteModelFolder(snapshot) ? snapshot : undefined;
}

/** A --model value that is not a path on disk but reads as a repo id "org/name" (the org is required, so presets and bare folder names never reach the network). */
export function looksLikeRepoId(spec: string): boolean {
  return spec.includes("/") && !existsSync(spec) && !spec.startsWith(".") && REPO_ID.test(spec);
}

/** `spec` itself when it is a folder, else its cached snapshot when it names a cached repo, else `spec` (the caller's error names it). */
export function resolveModelFromCache(spec: string): string {
  if (!looksLikeRepoId(spec)) return spec;
  try {
    return cachedSnapshot(spec) ?? spec;
  } catch {
    return spec;
  }
}
