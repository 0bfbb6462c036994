// Hub downloads against a loopback server that answers like the Hub (test/hub-server.ts), into
// a private Hugging Face cache: the layout Python uses, offline resolution, and every way a
// hostile or broken server was seen to misbehave.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, copyFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type FakeRepo, SHA, fakeHub, fixtureRepo } from "../../test/hub-server.ts";
import { loadModel } from "../models/load.ts";
import { cachedSnapshot, checkRepoId, hubCacheDir } from "./hub-cache.ts";
import { DownloadError, downloadModel } from "./hub.ts";

const FIXTURE = "test/fixtures/hf-tiny/vit";
const WEIGHTS = readFileSync(join(FIXTURE, "model.safetensors"));

function roots() {
  const root = mkdtempSync(join(tmpdir(), "hub-"));
  return { root, cacheDir: join(root, "cache", "hub") };
}

/** Every path under `dir` (to prove nothing was written outside the cache). */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: false }) as string[];
}

const rejects = (p: Promise<unknown>, pattern: RegExp) =>
  assert.rejects(p, (e: Error) => e instanceof DownloadError && pattern.test(e.message) && !e.message.includes("\n"));

test("a download fills the Hugging Face cache layout (blobs, snapshots/<commit> links, refs/main), loads, and is found again offline by repo id", async () => {
  const hub = await fakeHub({ "tiny/vit": fixtureRepo(FIXTURE) });
  const { root, cacheDir } = roots();
  try {
    const snap = await downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir });
    const folder = join(cacheDir, "models--tiny--vit");
    assert.equal(snap, join(folder, "snapshots", SHA));
    assert.equal(readFileSync(join(folder, "refs", "main"), "utf8"), SHA);
    const etag = createHash("sha256").update(WEIGHTS).digest("hex");
    assert.ok(lstatSync(join(snap, "model.safetensors")).isSymbolicLink());
    assert.equal(readlinkSync(join(snap, "model.safetensors")), join("..", "..", "blobs", etag));
    assert.deepEqual(readFileSync(join(snap, "model.safetensors")), WEIGHTS);
    assert.equal(loadModel(snap).family.modelType, "vit");
    const transfers = hub.hits.length;
    await downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir });
    assert.equal(hub.hits.length - transfers, 1, "a cached snapshot costs one API call and no transfer");
  } finally {
    await hub.close();
  }
  // offline: the server is gone, the repo id resolves from the cache
  const saved = process.env.HF_HUB_CACHE;
  process.env.HF_HUB_CACHE = cacheDir;
  try {
    assert.equal(hubCacheDir(), cacheDir);
    assert.equal(loadModel("tiny/vit").family.modelType, "vit");
    assert.throws(() => loadModel("tiny/absent"), /no complete download .*tenslora download tiny\/absent/);
  } finally {
    if (saved === undefined) delete process.env.HF_HUB_CACHE;
    else process.env.HF_HUB_CACHE = saved;
  }
  assert.ok(
    tree(root).every((p) => p.startsWith("cache")),
    "nothing outside the cache",
  );
});

test("a snapshot written by Python's huggingface_hub (plain files, refs/main) is found by repo id", () => {
  const { cacheDir } = roots();
  const snap = join(cacheDir, "models--py--vit", "snapshots", SHA);
  mkdirSync(snap, { recursive: true });
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(FIXTURE, f), join(snap, f));
  assert.equal(cachedSnapshot("py/vit", "main", cacheDir), undefined, "no ref yet");
  mkdirSync(join(cacheDir, "models--py--vit", "refs"));
  writeFileSync(join(cacheDir, "models--py--vit", "refs", "main"), SHA);
  assert.equal(cachedSnapshot("py/vit", "main", cacheDir), snap);
  assert.equal(cachedSnapshot("py/vit", SHA, cacheDir), snap);
});

test("repo ids and revisions that could climb out of the cache are refused before any request", async () => {
  const hub = await fakeHub({});
  const { cacheDir } = roots();
  try {
    for (const bad of ["../escaped", "a/../b", "..", "org/..", "a/b/c", "/abs", "a--b/c", ".hidden/x", "a/b?x"]) {
      assert.throws(() => checkRepoId(bad), DownloadError, bad);
      await rejects(downloadModel(bad, { hubUrl: hub.url, cacheDir }), /not a Hub repository id/);
    }
    for (const rev of ["../../x", "/etc", "a/../../b", "a\\b", "x?y"])
      await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir, revision: rev }), /--revision/);
    assert.equal(hub.hits.length, 0);
  } finally {
    await hub.close();
  }
});

test("shard names from a server's index cannot leave the snapshot (the `payload?/../../x` attack)", async () => {
  const { root, cacheDir } = roots();
  const evil = "payload?/../../../../../escaped.txt";
  const index = { metadata: {}, weight_map: { "vit.embeddings.cls_token": evil } };
  const repo: FakeRepo = {
    sha: SHA,
    files: {
      "config.json": { body: readFileSync(join(FIXTURE, "config.json")) },
      "model.safetensors.index.json": { body: Buffer.from(JSON.stringify(index)) },
      [evil]: { body: Buffer.from("owned") },
    },
  };
  const hub = await fakeHub({ "tiny/vit": repo });
  try {
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /refusing/);
    assert.ok(!tree(root).some((p) => p.includes("escaped")), "no escaped file");
    assert.ok(!existsSync(join(tmpdir(), "escaped.txt")));
    assert.equal(cachedSnapshot("tiny/vit", "main", cacheDir), undefined, "nothing looks complete");
  } finally {
    await hub.close();
  }
});

test("a forged commit or etag from the server is refused, never joined into a path", async () => {
  const { root, cacheDir } = roots();
  const forged = fixtureRepo(FIXTURE, "../../../../escaped");
  const hub = await fakeHub({ "tiny/vit": forged, "tiny/etag": { sha: SHA, files: { "config.json": { body: Buffer.from("{}"), etag: "../../../escaped" } } } });
  try {
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /not a 40-hex commit/);
    await rejects(downloadModel("tiny/etag", { hubUrl: hub.url, cacheDir }), /etag of config\.json, not a sha1 or sha256/);
    assert.ok(!tree(root).some((p) => p.includes("escaped")));
  } finally {
    await hub.close();
  }
});

test("more bytes than declared stop the transfer, remove the partial file and leave nothing that looks complete", async () => {
  const { cacheDir } = roots();
  const repo = fixtureRepo(FIXTURE);
  repo.files["model.safetensors"].mode = "more";
  const hub = await fakeHub({ "tiny/vit": repo });
  try {
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /more than the \d+ bytes it declared/);
    const blobs = readdirSync(join(cacheDir, "models--tiny--vit", "blobs"));
    assert.ok(!blobs.some((b) => b.endsWith(".incomplete")), `no partial file left: ${blobs}`);
    assert.equal(cachedSnapshot("tiny/vit", "main", cacheDir), undefined);
    assert.ok(!existsSync(join(cacheDir, "models--tiny--vit", "snapshots", SHA, "model.safetensors")));
  } finally {
    await hub.close();
  }
});

test("--max-download-size refuses a server that declares 10^12 bytes before transferring any", async () => {
  const { cacheDir } = roots();
  const repo = fixtureRepo(FIXTURE);
  repo.files["model.safetensors"].declared = 1e12;
  const hub = await fakeHub({ "tiny/vit": repo });
  try {
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir, maxBytes: 50e6 }), /declares 1000000000000 bytes.*--max-download-size 50000000/);
    // without a limit, the free disk space is the limit
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /needs \d+ more bytes but .* has \d+ free/);
    assert.ok(!hub.hits.some((h) => h.url.includes("model.safetensors") && h.range !== "bytes=0-0"), "only the size probe reached the weights");
  } finally {
    await hub.close();
  }
});

test("a stalled transfer stops after the stall timeout, and the next run resumes from the partial file with a Range request", async () => {
  const { cacheDir } = roots();
  const repo = fixtureRepo(FIXTURE);
  repo.files["model.safetensors"].mode = "stall";
  const hub = await fakeHub({ "tiny/vit": repo });
  try {
    const t0 = performance.now();
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir, stallMs: 300 }), /sent nothing for 0\.3 s/);
    assert.ok(performance.now() - t0 < 5000);
    const blobs = join(cacheDir, "models--tiny--vit", "blobs");
    const part = readdirSync(blobs).find((b) => b.endsWith(".incomplete"));
    assert.ok(part, "the partial file is kept for resuming");
    const have = readFileSync(join(blobs, part)).length;
    assert.ok(have > 0 && have < WEIGHTS.length);
    assert.equal(cachedSnapshot("tiny/vit", "main", cacheDir), undefined);
    delete repo.files["model.safetensors"].mode;
    const snap = await downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir });
    assert.ok(
      hub.hits.some((h) => h.range === `bytes=${have}-`),
      "resumed with a Range request",
    );
    assert.deepEqual(readFileSync(join(snap, "model.safetensors")), WEIGHTS);
  } finally {
    await hub.close();
  }
});

test("a cut connection is one typed line (no `TypeError: terminated`), and the next run completes the file", async () => {
  const { cacheDir } = roots();
  const repo = fixtureRepo(FIXTURE);
  repo.files["model.safetensors"].mode = "cut-once";
  const hub = await fakeHub({ "tiny/vit": repo });
  try {
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /connection to 127\.0\.0\.1:\d+ was cut after \d+ bytes.*resume/);
    const snap = await downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir });
    assert.deepEqual(readFileSync(join(snap, "model.safetensors")), WEIGHTS);
  } finally {
    await hub.close();
  }
});

test("bytes that do not match the declared sha256 are refused and removed", async () => {
  const { cacheDir } = roots();
  const repo = fixtureRepo(FIXTURE);
  repo.files["model.safetensors"].etag = createHash("sha256").update("something else").digest("hex");
  const hub = await fakeHub({ "tiny/vit": repo });
  try {
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /do not match the sha256/);
    assert.ok(!readdirSync(join(cacheDir, "models--tiny--vit", "blobs")).some((b) => b.includes(".incomplete")));
  } finally {
    await hub.close();
  }
});

test("redirects: to another origin without the token, never to a non-http scheme, and not forever", async () => {
  const { cacheDir } = roots();
  const cdn = await fakeHub({ "tiny/vit": fixtureRepo(FIXTURE) });
  const repo = fixtureRepo(FIXTURE);
  repo.files["model.safetensors"].redirect = `${cdn.url}/tiny/vit/resolve/${SHA}/model.safetensors`;
  const hub = await fakeHub({ "tiny/vit": repo, "tiny/file": { sha: SHA, files: { ...fixtureRepo(FIXTURE).files } } });
  const fileRepo = fixtureRepo(FIXTURE);
  fileRepo.files["model.safetensors"].redirect = "file:///etc/passwd";
  const loopRepo = fixtureRepo(FIXTURE);
  const evil = await fakeHub({ "tiny/file": fileRepo, "tiny/loop": loopRepo });
  loopRepo.files["model.safetensors"].redirect = `${evil.url}/tiny/loop/resolve/${SHA}/model.safetensors`;
  try {
    const snap = await downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir, token: "hf_secret" });
    assert.deepEqual(readFileSync(join(snap, "model.safetensors")), WEIGHTS);
    assert.ok(
      hub.hits.some((h) => h.auth === "Bearer hf_secret"),
      "the Hub gets the token",
    );
    assert.ok(cdn.hits.length > 0 && cdn.hits.every((h) => h.auth === undefined), "another origin never sees it");
    await rejects(downloadModel("tiny/file", { hubUrl: evil.url, cacheDir }), /redirected to a file: URL/);
    await rejects(downloadModel("tiny/loop", { hubUrl: evil.url, cacheDir }), /redirected more than 5 times/);
  } finally {
    await Promise.all([hub.close(), cdn.close(), evil.close()]);
  }
});

test("an unreachable Hub names the host; a missing repository names the status and the fix", async () => {
  const hub = await fakeHub({});
  const { cacheDir } = roots();
  await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /HTTP 404 .*check the repository id/);
  await hub.close();
  await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir }), /connecting to 127\.0\.0\.1:\d+ failed \(ECONNREFUSED\)/);
});

test("a server dripping a byte every 20 ms trips the minimum rate, and an overall deadline ends any transfer", async () => {
  const { cacheDir } = roots();
  const repo = fixtureRepo(FIXTURE);
  repo.files["model.safetensors"].mode = "drip";
  const hub = await fakeHub({ "tiny/vit": repo });
  try {
    let t0 = performance.now();
    await rejects(
      downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir, stallMs: 400, minBytesPerSec: 1000 }),
      /sent \d+ bytes in 0\.\d s, below the minimum rate of 1000 bytes\/s; run the same command again to resume/,
    );
    assert.ok(performance.now() - t0 < 5000, "never silent, yet stopped");
    t0 = performance.now();
    await rejects(downloadModel("tiny/vit", { hubUrl: hub.url, cacheDir, deadlineMs: 600 }), /passed its deadline; run the same command again to resume/);
    assert.ok(performance.now() - t0 < 5000);
  } finally {
    await hub.close();
  }
});
