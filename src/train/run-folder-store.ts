/**
 * A run folder as the trainer's store: `metrics.jsonl`, `checkpoint-<step>/` (checkpoint.ts) and
 * the `best/` and `last/` trained folders (artifacts.ts).
 */
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { namingPath } from "../io/atomic-file.ts";
import { saveTrained } from "./artifacts.ts";
import { listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { keepMetricsUpTo } from "./run-folder.ts";
import type { RunStore } from "./run-store.ts";

export function runFolderStore(outDir: string): RunStore {
  mkdirSync(outDir, { recursive: true });
  const metricsPath = join(outDir, "metrics.jsonl");
  return {
    location: outDir,
    startLog(resumeAt) {
      if (resumeAt === undefined) return namingPath(metricsPath, () => writeFileSync(metricsPath, ""));
      // drop log lines written after the checkpoint, and newer checkpoints that did not load
      keepMetricsUpTo(metricsPath, resumeAt);
      for (const c of listCheckpoints(outDir).filter((c) => c.step > resumeAt)) rmSync(c.dir, { recursive: true, force: true });
    },
    log: (rec) => namingPath(metricsPath, () => appendFileSync(metricsPath, JSON.stringify(rec) + "\n")),
    lastCheckpoint: () => listCheckpoints(outDir)[0]?.dir,
    saveCheckpoint: (c) => saveCheckpoint(outDir, c),
    loadCheckpoint: (warn) => loadLatestCheckpoint(outDir, warn),
    saveTrained: (name, model, trained) => saveTrained(join(outDir, name), model, trained),
  };
}
