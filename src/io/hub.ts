/**
 * Fetching a model from the Hugging Face Hub into the shared Hugging Face cache (see
 * hub-cache.ts), through `@huggingface/hub`: it speaks the Hub's API (repository info, the
 * commit a branch points to, file sizes and etags, resolve URLs, auth). The bytes themselves are
 * written here, not by the library's `downloadFileToCacheDir`, because that one restarts every
 * transfer from zero, has no stall timeout and no size cap, leaves its `.incomplete` file behind
 * on failure, and joins the server's etag and commit into paths unchecked. Here: each blob goes
 * to `<etag>.incomplete`, resumes with a Range request, may not exceed its declared size (nor
 * the total --max-download-size, nor the free disk space), is checked against its sha256 when
 * the etag is one, and is renamed into place; the snapshot links appear only for complete blobs
 * and the ref last, so an interrupted download never looks like a complete model.
 */
import {
  createReadStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  closeSync,
  renameSync,
  rmSync,
  statSync,
  statfsSync,
  symlinkSync,
  writeSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join, relative } from "node:path";
import { HubApiError, fileDownloadInfo, modelInfo } from "@huggingface/hub";
import { TensLoRAError } from "../errors.ts";
import { WEIGHTS_FILE, WEIGHTS_INDEX_FILE, readShardedIndex } from "./checkpoint.ts";
import {
  DownloadError,
  checkRepoId,
  checkRevision,
  hubCacheDir,
  isCommit,
  isCompleteModelFolder,
  isEtag,
  isSafeRelativePath,
  repoFolder,
} from "./hub-cache.ts";
import { type GuardOptions, guardedFetch } from "./hub-fetch.ts";
import { namingPath, writeFileAtomic } from "./atomic-file.ts";
import { acquireLock } from "./lock.ts";

export { DownloadError } from "./hub-cache.ts";

/** Files a classification model folder may have besides config.json and the weights. */
const OPTIONAL = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json", "vocab.json", "merges.txt"];

export interface DownloadOptions {
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** Defaults to $HF_ENDPOINT, else https://huggingface.co. */
  hubUrl?: string;
  /** Defaults to the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Defaults to $HF_TOKEN. */
  token?: string;
  /** Most bytes all files together may declare (default: no limit beyond the free disk space). */
  maxBytes?: number;
  /** Abort a transfer when nothing arrives for this long (default 60 s). */
  stallMs?: number;
  /** Abort a transfer averaging less over a stall window (default 1024 bytes/s). */
  minBytesPerSec?: number;
  /** The whole download's time limit (default 6 hours). */
  deadlineMs?: number;
  log?: (s: string) => void;
}

/** Run a library call, turning what it throws into one-line DownloadErrors. */
async function hub<T>(repo: string, what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof DownloadError && !e.message.startsWith(repo)) throw new DownloadError(`${repo}: ${e.message}`);
    if (e instanceof TensLoRAError) throw e;
    if (e instanceof HubApiError) {
      const hint =
        e.statusCode === 401 || e.statusCode === 403
          ? "the repository is private or gated: accept its terms on the Hub and set HF_TOKEN"
          : e.statusCode === 404
            ? "check the repository id and --revision"
            : "try again later";
      throw new DownloadError(`${repo}: the Hub answered HTTP ${e.statusCode} for ${what}; ${hint}`);
    }
    throw new DownloadError(`${repo}: unusable answer from the Hub for ${what} (${String((e as Error).message).split("\n")[0]})`);
  }
}

/** Replace `link` by a symlink to `target` atomically (link beside it, then rename). */
function linkAtomic(target: string, link: string): void {
  mkdirSync(dirname(link), { recursive: true });
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(relative(dirname(link), target), tmp);
  renameSync(tmp, link);
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

interface BlobTransfer {
  file: string;
  url: string;
  blob: string;
  size: number;
  etag: string;
  guard: GuardOptions;
  /** Sent only to the Hub's own origin. */
  auth?: Record<string, string>;
}

/** Bring `blob` to `size` bytes from `url`, resuming `<blob>.incomplete`; renamed into place only when complete (and its sha256 matches an LFS etag). */
async function fetchBlob(t: BlobTransfer): Promise<void> {
  if (existsSync(t.blob) && statSync(t.blob).size === t.size) return;
  mkdirSync(dirname(t.blob), { recursive: true });
  const lock = acquireLock(`${t.blob}.lock`, `the download of ${t.file}`);
  const part = `${t.blob}.incomplete`;
  try {
    let have = existsSync(part) ? statSync(part).size : 0;
    if (have > t.size) {
      rmSync(part);
      have = 0;
    }
    const { bavail, bsize } = statfsSync(dirname(t.blob));
    if (t.size - have > bavail * bsize) {
      throw new DownloadError(
        `${t.file} needs ${t.size - have} more bytes but ${dirname(t.blob)} has ${bavail * bsize} free; free space or set HF_HOME to a larger disk`,
      );
    }
    if (have < t.size) {
      const res = await guardedFetch(t.guard)(t.url, { headers: { ...t.auth, ...(have > 0 ? { range: `bytes=${have}-` } : {}) } });
      if (!res.ok || !res.body) throw new DownloadError(`${t.file}: the server answered HTTP ${res.status}; run the same command again later`);
      if (res.status !== 206)
        have = 0; // the server ignored the range: start over
      else if (!new RegExp(`^bytes ${have}-`).test(res.headers.get("content-range") ?? "")) {
        throw new DownloadError(
          `${t.file}: the server resumed at the wrong offset (${res.headers.get("content-range")}, expected ${have}); run the same command again`,
        );
      }
      const fd = openSync(part, have > 0 ? "a" : "w");
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          if (have + chunk.byteLength > t.size) {
            rmSync(part, { force: true });
            throw new DownloadError(`${t.file}: the server sent more than the ${t.size} bytes it declared; transfer stopped and the partial file removed`);
          }
          namingPath(part, () => writeSync(fd, chunk));
          have += chunk.byteLength;
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (have < t.size) throw new DownloadError(`${t.file}: the transfer ended after ${have} of ${t.size} bytes; run the same command again to resume`);
    }
    if (t.etag.length === 64 && (await sha256Of(part)) !== t.etag) {
      rmSync(part, { force: true });
      throw new DownloadError(
        `${t.file}: the bytes received do not match the sha256 ${t.etag} the Hub declared; partial file removed, run the same command again`,
      );
    }
    renameSync(part, t.blob);
  } finally {
    lock.release();
  }
}

/**
 * Download `repo` (e.g. "google/vit-base-patch16-224") into the Hugging Face cache and return its
 * snapshot folder: config.json, the safetensors weights (single or sharded) and the tokenizer or
 * preprocessor files the repository has. Blobs already cached are not fetched again.
 */
export async function downloadModel(repo: string, o: DownloadOptions = {}): Promise<string> {
  checkRepoId(repo);
  const revision = checkRevision(o.revision ?? "main");
  const hubUrl = (o.hubUrl ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
  const folder = repoFolder(o.cacheDir ?? hubCacheDir(), repo);
  const accessToken = o.token ?? process.env.HF_TOKEN;
  const guard: GuardOptions = {
    stallMs: o.stallMs ?? 60_000,
    minBytesPerSec: o.minBytesPerSec ?? 1024,
    deadline: Date.now() + (o.deadlineMs ?? 6 * 3600_000),
  };
  const maxBytes = o.maxBytes ?? Number.POSITIVE_INFINITY;
  // API answers are small JSON documents: 64 MiB is far above any real one
  const api = guardedFetch({ ...guard, maxBytes: 64 << 20 });
  const creds = accessToken ? { accessToken } : {};

  const info = await hub(repo, `revision "${revision}"`, () =>
    modelInfo({ name: repo, revision, hubUrl, fetch: api, ...creds, additionalFields: ["sha", "filePaths"] as never[] }),
  );
  const { sha, filePaths } = info as unknown as { sha?: unknown; filePaths?: unknown };
  if (typeof sha !== "string" || !isCommit(sha))
    throw new DownloadError(`${repo}: the Hub sent ${JSON.stringify(sha)} as the commit of "${revision}", not a 40-hex commit id; refusing it`);
  const listed = new Set(Array.isArray(filePaths) ? filePaths.filter((f): f is string => typeof f === "string") : []);
  const snapshot = join(folder, "snapshots", sha);

  let declared = 0;
  const get = async (file: string) => {
    if (!isSafeRelativePath(file) || !listed.has(file)) {
      throw new DownloadError(
        `${repo}: refusing the file name ${JSON.stringify(file)} from the server: it must be a file the repository lists, without "..", "." or empty parts, leading "/" or backslash`,
      );
    }
    const link = join(snapshot, file);
    if (existsSync(link)) return;
    const path = file.split("/").map(encodeURIComponent).join("/");
    const fi = await hub(repo, file, () => fileDownloadInfo({ repo, path, revision: sha, hubUrl, fetch: api, ...creds }));
    if (!fi) throw new DownloadError(`${repo}: ${file} is listed but the Hub has no such file at ${sha}`);
    const etag = fi.etag.replace(/^W\//, "").replaceAll('"', "");
    if (!isEtag(etag)) throw new DownloadError(`${repo}: the Hub sent ${JSON.stringify(fi.etag)} as the etag of ${file}, not a sha1 or sha256; refusing it`);
    if (!Number.isSafeInteger(fi.size) || fi.size < 0) throw new DownloadError(`${repo}: the Hub declared an invalid size ${fi.size} for ${file}`);
    declared += fi.size;
    if (declared > maxBytes) {
      throw new DownloadError(
        `${repo}: ${file} declares ${fi.size} bytes, ${declared} with the files before it, over --max-download-size ${maxBytes}; raise the limit if the model really is that large`,
      );
    }
    o.log?.(`downloading ${repo}/${file} (${fi.size} bytes)`);
    const sameOrigin = new URL(fi.url).origin === new URL(hubUrl).origin;
    const blob = join(folder, "blobs", etag);
    await fetchBlob({
      file,
      url: fi.url,
      blob,
      size: fi.size,
      etag,
      guard,
      auth: accessToken && sameOrigin ? { authorization: `Bearer ${accessToken}` } : undefined,
    });
    linkAtomic(blob, link);
  };

  // weights last: a snapshot that looks complete (isCompleteModelFolder) has everything else too
  if (!isCompleteModelFolder(snapshot)) {
    if (!listed.has("config.json")) throw new DownloadError(`${repo}@${revision} has no config.json; only Transformers model repositories are supported`);
    await get("config.json");
    for (const f of OPTIONAL) if (listed.has(f)) await get(f);
    if (listed.has(WEIGHTS_FILE)) await get(WEIGHTS_FILE);
    else if (listed.has(WEIGHTS_INDEX_FILE)) {
      await get(WEIGHTS_INDEX_FILE);
      let shards: string[];
      try {
        shards = readShardedIndex(snapshot).shards;
      } catch (e) {
        rmSync(join(snapshot, WEIGHTS_INDEX_FILE), { force: true });
        throw new DownloadError(`${repo}: refusing the server's ${WEIGHTS_INDEX_FILE}: ${(e as Error).message}`);
      }
      for (const shard of shards) await get(shard);
    } else {
      throw new DownloadError(`${repo}@${revision} has no ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}; only safetensors checkpoints are supported`);
    }
  }
  if (revision !== sha) writeFileAtomic(join(folder, "refs", revision), sha);
  return snapshot;
}
