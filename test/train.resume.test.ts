/**
 * Resume: `tenslora train` in a child process is stopped by a real SIGTERM after a few steps
 * (watched on its --json lines), exits 130 with a checkpoint, and `--resume` finishes the run.
 * The final adapter bytes, the best adapter and every logged loss equal those of an
 * uninterrupted run of the same command.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { listCheckpoints } from "../src/train/checkpoint.ts";
import { BIN, assertOk, cli, cliAsync } from "./cli-helpers.ts";
import { VIT, cliEnv, tempDir, writeImageFolder } from "./make-data.ts";

/** Start `tenslora ...args`, send `signal` once a step ≥ `afterStep` is reported, and wait for the exit. */
function runAndSignal(args: string[], afterStep: number, signal: NodeJS.Signals, cache: string) {
  return new Promise<{ code: number | null; signalledAt: number; lines: Record<string, unknown>[]; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(cache) });
    const lines: Record<string, unknown>[] = [];
    let stderr = "";
    let signalledAt = -1;
    child.stderr.on("data", (d) => (stderr += d));
    createInterface({ input: child.stdout }).on("line", (l) => {
      const e = JSON.parse(l) as { type: string; step?: number };
      lines.push(e);
      if (signalledAt < 0 && e.type === "step" && e.step! >= afterStep) {
        signalledAt = e.step!;
        child.kill(signal);
      }
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, signalledAt, lines, stderr });
    });
  });
}

test("SIGTERM mid-run, then --resume (with augmentation and dropout): the final adapter is bit-identical to an uninterrupted run", async () => {
  const dir = tempDir();
  const images = join(dir, "images");
  await writeImageFolder(images, { classes: 2, perClass: 8, size: 32 });
  const common = ["train", "--model", VIT, "--data", images, "--construction", "att_qkv_depth", "--ranks", "2,2,2,2,2", "--epochs", "4", "--batch-size", "4"];
  const flags = [...common, "--lr", "0.01", "--augment", "--dropout", "0.2", "--save-every", "1", "--eval-every", "3", "--threads", "1", "--json"];
  const whole = join(dir, "whole");
  const cut = join(dir, "cut");

  // the uninterrupted run and the interrupted one side by side (one thread each)
  const [full, stopped] = await Promise.all([cliAsync([...flags, "--out", whole]), runAndSignal([...flags, "--out", cut], 3, "SIGTERM", tempDir())]);
  assertOk(full, "uninterrupted run");
  const total = JSON.parse(readFileSync(join(whole, "summary.json"), "utf8")).steps as number;
  assert.ok(total >= 12, `enough steps to stop in the middle (${total})`);

  const shown = `\nstderr:\n${stopped.stderr}\nstdout:\n${stopped.lines.map((l) => JSON.stringify(l)).join("\n")}`;
  assert.ok(stopped.signalledAt >= 3, `the signal was sent after step 3${shown}`);
  assert.equal(stopped.code, 130, `a stopped run exits 130${shown}`);
  assert.doesNotMatch(stopped.stderr, /^\s+at /m, "no stack trace");
  const state = JSON.parse(readFileSync(join(listCheckpoints(cut)[0].dir, "state.json"), "utf8"));
  const lastStep = Math.max(...stopped.lines.filter((l) => l.type === "step").map((l) => l.step as number));
  assert.equal(state.step, lastStep, "the checkpoint is at the last finished step");
  assert.ok(state.step < total, `stopped before the end (step ${state.step} of ${total})`);
  assert.ok(
    stopped.lines.some((l) => l.type === "message" && /SIGTERM/.test(String(l.message))),
    "the signal is acknowledged",
  );
  assert.ok(
    stopped.lines.some((l) => l.type === "message" && String(l.message).includes(`--resume ${cut}`)),
    "the message says how to resume",
  );
  assert.ok(!existsSync(join(cut, "last")), "no final adapter before the run ends");

  const resumed = cli(["train", "--resume", cut, "--json", "--threads", "1"]);
  assertOk(resumed, "resume");
  const firstResumed = resumed.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .find((e) => e.type === "step");
  assert.equal(firstResumed.step, state.step + 1, "the resumed run continues after the checkpoint");

  for (const f of ["last/adapter_model.safetensors", "best/adapter_model.safetensors", "last/adapter_config.json"]) {
    assert.ok(readFileSync(join(cut, f)).equals(readFileSync(join(whole, f))), `${f}: identical bytes`);
  }
  const records = (run: string) => readFileSync(join(run, "metrics.jsonl"), "utf8");
  assert.equal(records(cut), records(whole), "metrics.jsonl (every loss, lr and eval) identical");
  // the default validation split is rebuilt by the resumed process: its scores and the selection match
  assert.ok(
    records(cut)
      .split("\n")
      .filter((l) => l.includes('"eval"'))
      .every((l) => "val_accuracy" in JSON.parse(l)),
    "every evaluation scores the validation split",
  );
  assert.ok(JSON.parse(readFileSync(join(cut, "summary.json"), "utf8")).validationSize > 0, "a validation split was held out");
  const summary = (run: string) => {
    const { stepSeconds, samplesPerSecond, ...rest } = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
    void stepSeconds;
    void samplesPerSecond;
    return rest;
  };
  assert.deepEqual(summary(cut), summary(whole));
});

test("--resume of a run that never saved a checkpoint names the problem", () => {
  const dir = tempDir();
  const r = cli(["train", "--resume", join(dir, "nothing-here"), "--json"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^tenslora: .*nothing-here/m);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});
