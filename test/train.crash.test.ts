/**
 * `tenslora train` (the embedded model, 2 epochs, a checkpoint every step) against crashes:
 * SIGKILL at random moments, a resume after each, never a run that cannot resume and the same
 * metrics and adapter bytes as an uninterrupted run; two runs on one folder; a refused resume
 * that leaves the folder untouched; and a disk that fills up mid-run (a tmpfs in a private mount
 * namespace, shrunk after the first checkpoint).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { createInterface } from "node:readline";
import { listCheckpoints } from "../src/train/checkpoint.ts";
import { Rng } from "../src/tensor/random.ts";
import { BIN, type CliResult, STACK_LINE, assertOk, assertUserError, cache, cliAsync } from "./cli-helpers.ts";
import { cliEnv, tempDir } from "./make-data.ts";

const FLAGS = ["train", "--epochs", "2", "--save-every", "1", "--threads", "1", "--json"];
const root = tempDir();
const reference = join(root, "reference");
let total = 0;

/** Files of a run that must equal the uninterrupted run's, byte for byte (summary without timings). */
function outcome(run: string): Record<string, string> {
  const out: Record<string, string> = { metrics: readFileSync(join(run, "metrics.jsonl"), "utf8") };
  for (const f of readdirSync(join(run, "last"))) out[`last/${f}`] = readFileSync(join(run, "last", f)).toString("base64");
  for (const f of readdirSync(join(run, "best"))) out[`best/${f}`] = readFileSync(join(run, "best", f)).toString("base64");
  const { stepSeconds, samplesPerSecond, ...summary } = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
  void stepSeconds;
  void samplesPerSecond;
  out.summary = JSON.stringify(summary);
  return out;
}

/** Start `tenslora train …`; SIGKILL it `delayMs` after it reports step ≥ `atStep` (0: after start). */
function runAndKill(args: string[], atStep: number, delayMs: number): Promise<CliResult & { killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(cache) });
    let stdout = "";
    let stderr = "";
    let armed = false;
    const kill = () => {
      if (!armed) {
        armed = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    };
    if (atStep === 0) kill();
    child.stderr.on("data", (d) => (stderr += d));
    createInterface({ input: child.stdout }).on("line", (l) => {
      stdout += `${l}\n`;
      const e = JSON.parse(l);
      if (e.type === "step" && e.step >= atStep) kill();
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 600_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr, killed: signal === "SIGKILL" });
    });
  });
}

before(async () => {
  const r = await cliAsync([...FLAGS, "--out", reference], 600_000);
  assertOk(r, "uninterrupted run");
  total = JSON.parse(readFileSync(join(reference, "summary.json"), "utf8")).steps;
});

test("SIGKILL at random moments (startup, mid-step, between a checkpoint's renames), resumed each time: identical metrics and adapters", async () => {
  const run = join(root, "killed");
  const rng = new Rng(17);
  const kills: string[] = [];
  let done: CliResult | undefined;
  for (let attempt = 0; attempt < 12 && !done; attempt++) {
    const resumable = listCheckpoints(run).length > 0;
    const args = [...FLAGS, ...(resumable ? ["--resume", run] : ["--out", run, "--overwrite"])];
    // the last attempt runs to the end; the others die at a random step plus up to one step's time
    const atStep = attempt === 8 ? Number.POSITIVE_INFINITY : Math.floor(rng.uniform() * (total + 1));
    const delay = Math.floor(rng.uniform() * (atStep === 0 ? 4000 : 60));
    const r = await runAndKill(args, atStep, delay);
    if (r.killed) {
      kills.push(`${resumable ? "resume" : "new"}@step${atStep}+${delay}ms`);
      continue;
    }
    assertOk(r, `attempt ${attempt} (${args.slice(-2).join(" ")}) after kills ${kills.join(", ")}`);
    done = r;
  }
  assert.ok(done, `the run finished (kills: ${kills.join(", ")})`);
  assert.ok(kills.length >= 6, `killed ${kills.length} times`);
  console.log(`# ${kills.length} kills: ${kills.join(", ")}`);
  assert.deepEqual(outcome(run), outcome(reference), `same outcome after kills ${kills.join(", ")}`);
  const left = readdirSync(run).filter((n) => n.startsWith(".") && n !== ".lock");
  assert.deepEqual(left, [], "no temporary folder left");
  assert.ok(!existsSync(join(run, ".lock")), "the lock is released");
});

test("a second train on a folder in use is refused naming the owner; a non-empty --out is refused; a refused --resume changes nothing", async () => {
  const run = join(root, "owned");
  // long enough to outlast the second CLI's start on any machine; stopped by SIGTERM once refused
  const first = spawn(process.execPath, [BIN, ...FLAGS, "--epochs", "200", "--out", run], { env: cliEnv(cache) });
  const started = new Promise<void>((resolve) => createInterface({ input: first.stdout }).on("line", (l) => JSON.parse(l).type === "step" && resolve()));
  const exited = new Promise((resolve) => first.on("close", resolve));
  await started;
  assertUserError(await cliAsync([...FLAGS, "--out", run, "--overwrite"]), new RegExp(`in use by process ${first.pid}`), "second run on a busy folder");
  first.kill("SIGTERM");
  await exited;
  assertUserError(await cliAsync([...FLAGS, "--out", run]), /already holds files .*--resume .*--overwrite/, "new run into a stopped run's folder");

  const snapshot = () =>
    (readdirSync(run, { recursive: true }) as string[])
      .sort()
      .map((f) => {
        const p = join(run, f);
        return statSync(p).isFile() ? `${f}:${statSync(p).mtimeMs}:${readFileSync(p).toString("base64")}` : f;
      })
      .join("\n");
  const before = snapshot();
  assertUserError(await cliAsync([...FLAGS, "--resume", run, "--lr", "0.5"]), /another configuration/, "resume with a changed flag");
  assert.equal(snapshot(), before, "the refused resume left every file as it was");
});

test("a disk that fills up mid-run: one line, the last checkpoint intact, and --resume finishes with the uninterrupted run's results", async (t) => {
  if (spawnSync("unshare", ["-Urm", "true"]).status !== 0) {
    t.skip("unshare -Urm (a private mount namespace for a small tmpfs) is not permitted here");
    return;
  }
  const mnt = tempDir();
  const saved = join(root, "disk-full");
  // inside the namespace: tmpfs at `mnt`, train there, shrink the tmpfs to what is used (+16 KiB)
  // once the first checkpoint exists, let the run fail, then copy the folder out
  const orchestrate = `
    import { spawn, execFileSync } from "node:child_process";
    import { statfsSync, cpSync } from "node:fs";
    import { createInterface } from "node:readline";
    const [mnt, out, bin, args] = [process.argv[1], process.argv[2], process.argv[3], JSON.parse(process.argv[4])];
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt]);
    const child = spawn(process.execPath, [bin, ...args, "--out", mnt + "/run"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    let shrunk = false;
    createInterface({ input: child.stdout }).on("line", (l) => {
      if (!shrunk && JSON.parse(l).type === "checkpoint") {
        shrunk = true;
        const s = statfsSync(mnt);
        const usedKiB = Math.ceil(((s.blocks - s.bfree) * s.bsize) / 1024);
        execFileSync("mount", ["-o", "remount,size=" + (usedKiB + 16) + "k", mnt]);
      }
    });
    child.on("close", (code) => {
      cpSync(mnt + "/run", out, { recursive: true });
      console.log(JSON.stringify({ code, stderr, shrunk }));
    });
  `;
  const r = spawnSync("unshare", ["-Urm", process.execPath, "--input-type=module", "-e", orchestrate, mnt, saved, BIN, JSON.stringify(FLAGS)], {
    encoding: "utf8",
    env: cliEnv(cache),
    timeout: 600_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.ok(res.shrunk, "the disk was shrunk after the first checkpoint");
  assertUserError({ code: res.code, signal: null, stdout: "", stderr: res.stderr }, /no space left|ENOSPC/, "full disk");
  assert.equal(res.stderr.split("\n").filter((l: string) => l.startsWith("tenslora:")).length, 1, "one line");
  assert.doesNotMatch(res.stderr, STACK_LINE);
  assert.ok(listCheckpoints(saved).length > 0, "a checkpoint survived");
  assertOk(await cliAsync([...FLAGS, "--resume", saved], 600_000), "resume after freeing space");
  assert.deepEqual(outcome(saved), outcome(reference));
});
