/**
 * `npm run soak [-- --minutes 30 --window 30 --threads N]`: trains the embedded model (the
 * default `tenslora train` run, with checkpoints every 200 steps and the progress events a CLI
 * run emits) for a fixed time, and every window records the resident memory and the median wall
 * time between step events, with the process's CPU time per step. After a warm-up (the first 20 %
 * of the windows, at least 2) it fails when memory grows by more than 5 % or a step of the last
 * third of the windows costs more than 10 % more CPU time than one of the first third. The check is
 * one-sided because a soak looks for degradation: leaks, growing caches, slower kernels; a process
 * that gets faster has none of those. It judges CPU time rather than wall time because CPU time
 * counts only this process's work, so other jobs on a shared machine move it far less; the wall
 * time is printed beside it. Not part of `npm test`: it is meant to run for half an hour.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULTS, EMBEDDED_OVERRIDES, applyConfig } from "../src/experiments/run-config.ts";
import { runTraining } from "../src/experiments/run.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const { values } = parseArgs({
  options: { minutes: { type: "string", default: "30" }, window: { type: "string", default: "30" }, threads: { type: "string", default: "0" } },
});
const minutes = Number(values.minutes);
const windowSec = Number(values.window);
if (!(minutes > 0) || !(windowSec > 0)) throw new Error("--minutes and --window take positive numbers");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Window {
  t: number;
  steps: number;
  stepMs: number;
  cpuMsPerStep: number;
  rssMiB: number;
}

const out = mkdtempSync(join(tmpdir(), "tenslora-soak-"));
const cfg = applyConfig(
  applyConfig(DEFAULTS, EMBEDDED_OVERRIDES, "embedded"),
  { epochs: 1_000_000, evalEvery: 1_000_000_000, saveEvery: 200, threads: Number(values.threads) },
  "soak",
);
const windows: Window[] = [];
let gaps: number[] = [];
let last = 0;
let stepsDone = 0;
let start = 0;
let windowStart = 0;
let cpuAtWindowStart = process.cpuUsage();
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
const load0 = loadavg()[0];
console.error(`soak: ${minutes} min, a sample every ${windowSec} s, load average ${load0.toFixed(2)} at start`);
try {
  const result = await runTraining(cfg, join(out, "run"), {
    runtime: nodeRuntime,
    onEvent(e) {
      if (e.type !== "step") return;
      const now = performance.now();
      if (!start) {
        start = windowStart = now;
        cpuAtWindowStart = process.cpuUsage();
      } else gaps.push(now - last);
      last = now;
      stepsDone = e.step;
      if (now - windowStart >= windowSec * 1000 && gaps.length) {
        const w = {
          t: Math.round((now - start) / 1000),
          steps: gaps.length,
          stepMs: median(gaps),
          cpuMsPerStep: cpuMs(cpuAtWindowStart) / gaps.length,
          rssMiB: process.memoryUsage().rss / 2 ** 20,
        };
        windows.push(w);
        console.error(`  t=${w.t}s steps=${stepsDone} step=${w.stepMs.toFixed(2)} ms cpu/step=${w.cpuMsPerStep.toFixed(2)} ms rss=${w.rssMiB.toFixed(1)} MiB`);
        gaps = [];
        windowStart = now;
        cpuAtWindowStart = process.cpuUsage();
      }
    },
    shouldStop: () => start > 0 && performance.now() - start > minutes * 60_000,
  });
  const warm = Math.max(2, Math.ceil(windows.length * 0.2));
  const steady = windows.slice(warm);
  if (steady.length < 3) throw new Error(`only ${windows.length} windows: run longer (--minutes) or with a shorter --window`);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const thirds = (pick: (w: Window) => number) => {
    const early = median(steady.slice(0, third).map(pick));
    const late = median(steady.slice(-third).map(pick));
    return { early, late, drift: late / early - 1 };
  };
  const wall = thirds((w) => w.stepMs);
  const cpu = thirds((w) => w.cpuMsPerStep);
  const growth = steady.at(-1)!.rssMiB / steady[0].rssMiB - 1;
  const load1 = loadavg()[0];
  const verdict = cpu.drift <= 0.1 && growth <= 0.05 ? "PASS" : "FAIL";
  console.log(
    JSON.stringify({
      verdict,
      minutes,
      steps: result.steps,
      windows: windows.length,
      warmupWindows: warm,
      cpuMsPerStepEarly: +cpu.early.toFixed(3),
      cpuMsPerStepLate: +cpu.late.toFixed(3),
      cpuTimeDrift: +cpu.drift.toFixed(4),
      stepMsEarly: +wall.early.toFixed(3),
      stepMsLate: +wall.late.toFixed(3),
      stepTimeDrift: +wall.drift.toFixed(4),
      rssMiBAfterWarmup: +steady[0].rssMiB.toFixed(1),
      rssMiBEnd: +steady.at(-1)!.rssMiB.toFixed(1),
      rssGrowth: +growth.toFixed(4),
      loadAverage: [+load0.toFixed(2), +load1.toFixed(2)],
    }),
  );
  process.exitCode = verdict === "PASS" ? 0 : 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
