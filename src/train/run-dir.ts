/**
 * A run folder as the trainer's store: `metrics.jsonl`, `checkpoint/` (written atomically by
 * checkpoint.ts) and the `best/` and `last/` trained folders (artifacts.ts).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveTrained } from "./artifacts.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import type { MetricsRecord, RunStore } from "./run-store.ts";

export function runDir(outDir: string): RunStore {
  mkdirSync(outDir, { recursive: true });
  const ckptDir = join(outDir, "checkpoint");
  const metricsPath = join(outDir, "metrics.jsonl");
  return {
    location: outDir,
    checkpointLocation: ckptDir,
    startLog(resumeAt) {
      if (resumeAt === undefined || !existsSync(metricsPath)) return writeFileSync(metricsPath, "");
      // drop log lines written after the checkpoint
      const kept = readFileSync(metricsPath, "utf8").split("\n").filter((l) => l && (JSON.parse(l) as MetricsRecord).step <= resumeAt);
      writeFileSync(metricsPath, kept.map((l) => l + "\n").join(""));
    },
    log: (rec) => appendFileSync(metricsPath, JSON.stringify(rec) + "\n"),
    hasCheckpoint: () => existsSync(ckptDir),
    saveCheckpoint: (c) => saveCheckpoint(ckptDir, c),
    loadCheckpoint: () => loadCheckpoint(ckptDir),
    saveTrained: (name, model, trained) => saveTrained(join(outDir, name), model, trained),
  };
}
