// Run folders and checkpoints on disk: the lock (live owner refused, dead owner taken over),
// the new / overwrite / resume rules, torn metrics lines, checkpoint rotation and stale
// leftovers, and a real full disk (ENOSPC from a small tmpfs in a private mount namespace).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FormatError } from "../errors.ts";
import { LockedError, acquireLock } from "../io/lock.ts";
import { type Checkpoint, listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { onTinyDisk, tinyDiskUnavailable } from "../../test/tiny-disk.ts";
import { keepMetricsUpTo, openRunFolder, releaseFailedRun } from "./run-folder.ts";

const temp = () => mkdtempSync(join(tmpdir(), "run-folder-"));

function ckpt(step: number, n = 16): Checkpoint {
  const params = Float32Array.from({ length: n }, (_, i) => step + i / n);
  return { state: { step, best: null, optimizer: { step } as never, configHash: "h" }, tensors: { params, "exp_avg.w": params.map((x) => x / 2) } };
}

test("a lock held by a live process is refused naming its pid; a dead owner's lock is taken over", async () => {
  const dir = temp();
  const path = join(dir, ".lock");
  const sleeper = spawn("sleep", ["30"]);
  try {
    writeFileSync(path, JSON.stringify({ pid: sleeper.pid, host: hostname(), since: "then" }));
    assert.throws(
      () => acquireLock(path, "run folder x"),
      (e: Error) => e instanceof LockedError && e.message.includes(`process ${sleeper.pid}`),
    );
  } finally {
    sleeper.kill("SIGKILL");
  }
  const dead = spawnSync("true").pid!;
  writeFileSync(path, JSON.stringify({ pid: dead, host: hostname(), since: "then" }));
  const lock = acquireLock(path, "run folder x");
  assert.equal(JSON.parse(readFileSync(path, "utf8")).pid, process.pid);
  assert.throws(() => openRunFolder(dir, "new"), LockedError, "a second run in the same process is refused too");
  lock.release();
  assert.ok(!existsSync(path));
  writeFileSync(path, "{"); // a writer killed between create and write
  acquireLock(path, "run folder x").release();
  writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), since: "2000-01-01T00:00:00Z" })); // our pid, reused after a restart
  acquireLock(path, "run folder x").release();
});

test("a new run refuses a non-empty folder; --overwrite empties it; --resume needs a checkpoint; stale temp folders go", () => {
  const dir = temp();
  openRunFolder(dir, "new").release();
  writeFileSync(join(dir, "metrics.jsonl"), "");
  assert.throws(() => openRunFolder(dir, "new"), /already holds files \(metrics\.jsonl\); continue that run with --resume .* --overwrite/);
  assert.throws(() => openRunFolder(dir, "resume"), /holds no checkpoint-<step>/);
  assert.ok(existsSync(join(dir, "metrics.jsonl")), "a refusal changes nothing");
  openRunFolder(dir, "overwrite").release();
  assert.deepEqual(readdirSync(dir), []);
  saveCheckpoint(dir, ckpt(3));
  for (const stale of [".tmp-checkpoint-5-99999", ".trash-checkpoint-1-99999", "checkpoint.old-4242", "checkpoint.tmp-4242"]) mkdirSync(join(dir, stale));
  openRunFolder(dir, "resume").release();
  assert.deepEqual(readdirSync(dir), ["checkpoint-3"]);
  assert.throws(() => openRunFolder(join(dir, "absent"), "resume"), /no such run folder/);
});

test("a failed run that logged no step leaves its folder as it found it; one that trained keeps its log for the user to read", () => {
  const root = temp();
  const setupError = join(root, "setup-error");
  const first = openRunFolder(setupError, "new");
  writeFileSync(join(setupError, "config.json"), "{}");
  writeFileSync(join(setupError, "metrics.jsonl"), "");
  releaseFailedRun(first);
  assert.ok(!existsSync(setupError), "the folder the run made is removed");

  const diverged = join(root, "diverged");
  const second = openRunFolder(diverged, "new");
  writeFileSync(join(diverged, "config.json"), "{}");
  writeFileSync(join(diverged, "metrics.jsonl"), `${JSON.stringify({ type: "train", step: 1, loss: 2.3 })}\n`);
  releaseFailedRun(second);
  assert.deepEqual(readdirSync(diverged).sort(), ["config.json", "metrics.jsonl"]);
  assert.ok(acquireLock(join(diverged, ".lock"), "after release"), "the lock is released");
});

test("checkpoints rotate (the newest kept), resume takes the newest that loads and skips a damaged one", () => {
  const dir = temp();
  saveCheckpoint(dir, ckpt(2));
  saveCheckpoint(dir, ckpt(4));
  assert.deepEqual(readdirSync(dir), ["checkpoint-4"]);
  // a kill after the rename but before the old one is removed leaves two complete ones
  saveCheckpoint(join(dir, "x"), ckpt(1));
  mkdirSync(join(dir, "checkpoint-6"));
  writeFileSync(join(dir, "checkpoint-6", "state.json"), '{"step": 6');
  const warnings: string[] = [];
  const got = loadLatestCheckpoint(dir, (w) => warnings.push(w));
  assert.equal(got.state.step, 4);
  assert.deepEqual(got.tensors.params, ckpt(4).tensors.params);
  assert.match(warnings[0], /skipping .*checkpoint-6/);
  assert.deepEqual(
    listCheckpoints(dir).map((c) => c.step),
    [6, 4],
  );
  assert.throws(() => loadLatestCheckpoint(temp()), FormatError);
});

test("metrics.jsonl: records after the checkpoint are dropped, a torn last line is tolerated, damage before the end is an error", () => {
  const path = join(temp(), "metrics.jsonl");
  const rec = (step: number) => JSON.stringify({ type: "train", step, loss: 1 / step });
  writeFileSync(path, `${rec(1)}\n${rec(2)}\n${rec(3)}\n{"type":"tra`);
  keepMetricsUpTo(path, 2);
  assert.equal(readFileSync(path, "utf8"), `${rec(1)}\n${rec(2)}\n`);
  writeFileSync(path, `${rec(1)}\n{"ty\n${rec(3)}\n`);
  assert.throws(() => keepMetricsUpTo(path, 3), /line 2 is not JSON/);
});

test("a full disk (ENOSPC on a 256 KiB tmpfs) is a DiskError naming the intact last checkpoint, which still loads", (t) => {
  const unavailable = tinyDiskUnavailable();
  if (unavailable) {
    // without user namespaces there is no unprivileged way to get a small file system
    t.skip(unavailable);
    return;
  }
  const mnt = temp();
  const script = `
    import { saveCheckpoint, loadLatestCheckpoint, listCheckpoints } from "./src/train/checkpoint.ts";
    import { readdirSync } from "node:fs";
    const dir = ${JSON.stringify(mnt)};
    const big = (step) => { const params = new Float32Array(12000).fill(step); return { state: { step, best: null, optimizer: {}, configHash: "h" }, tensors: { params, m: params, v: params } }; };
    saveCheckpoint(dir, big(1));
    let error;
    try { saveCheckpoint(dir, big(2)); } catch (e) { error = { name: e.constructor.name, message: e.message }; }
    const last = loadLatestCheckpoint(dir);
    console.log(JSON.stringify({ error, files: readdirSync(dir), step: last.state.step, value: last.tensors.params[0] }));
  `;
  const r = onTinyDisk(mnt, "256k", [process.execPath, "--import", "tsx", "--input-type=module", "-e", script]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.error?.name, "DiskError", JSON.stringify(out));
  assert.match(out.error.message, /no space left on device.*checkpoint-1 \(step 1\) is intact.*--resume/);
  assert.deepEqual(out.files, ["checkpoint-1"], "no temporary folder left");
  assert.equal(out.step, 1);
  assert.equal(out.value, 1);
});
