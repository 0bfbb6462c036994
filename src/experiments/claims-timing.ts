/** The compute a claims folder's runs took, one appended line per run (timing.jsonl). */
import { appendFileSync, existsSync, readFileSync } from "node:fs";

export interface Timing {
  wallSeconds: number;
  cpuSeconds: number;
  runs: number;
}

/**
 * The summed compute of the runs trained into a claims folder. Each finished run appends its own
 * line, so claims processes on several tasks can share the folder without losing each other's
 * updates; a line torn by a process killed mid-write is skipped.
 */
export function readTiming(path: string): Timing {
  const sum: Timing = { wallSeconds: 0, cpuSeconds: 0, runs: 0 };
  if (!existsSync(path)) return sum;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    let t: Timing;
    try {
      t = JSON.parse(line);
    } catch {
      continue;
    }
    sum.wallSeconds += t.wallSeconds;
    sum.cpuSeconds += t.cpuSeconds;
    sum.runs += t.runs;
  }
  return sum;
}

/** Adds one run's line: a single append, atomic on a local file system, so no reader-writer race. */
export function appendTiming(path: string, t: Timing): void {
  appendFileSync(path, `${JSON.stringify(t)}\n`);
}
