/**
 * What a comparison folder compares: the settings that pick the model (and how its frozen base is
 * held) and the data, recorded in `comparison.json` so that a `compare` of another benchmark into
 * the same folder fails before it prepares anything (pretraining an embedded model takes
 * minutes), not after.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import type { RunConfig } from "./run-config.ts";

const KEYS = ["task", "model", "baseDtype", "data", "dataset", "dataFormat", "evalData", "textColumn", "textPairColumn", "labelColumn", "numLabels"] as const;
const PATHS: ReadonlySet<string> = new Set(["model", "data", "evalData"]);
/** What a record made before a key existed compared: float32 bases. */
const RECORDED_LATER: Partial<Benchmark> = { baseDtype: "f32" };
const FILE = "comparison.json";

type Benchmark = Record<(typeof KEYS)[number], string | number>;

function benchmarkOf(cfg: RunConfig): Benchmark {
  // paths are kept absolute so that the same folders given from another directory still match
  const value = (k: (typeof KEYS)[number]) => (PATHS.has(k) && cfg[k] !== "" && cfg[k] !== "mnist" ? resolve(String(cfg[k])) : cfg[k]);
  return Object.fromEntries(KEYS.map((k) => [k, value(k)])) as Benchmark;
}

/** Absent, empty, or holding only its record (a comparison that failed before its first run). */
function holdsNoRun(outDir: string): boolean {
  return !existsSync(outDir) || readdirSync(outDir).every((name) => name === FILE);
}

/** Throw when `outDir` records a comparison of another model or data set than `cfg`'s and holds its runs. */
export function checkCompareFolder(outDir: string, cfg: RunConfig): void {
  const path = join(outDir, FILE);
  if (!existsSync(path) || holdsNoRun(outDir)) return;
  let saved: Partial<Benchmark>;
  try {
    saved = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(`${path} does not parse (${(e as Error).message}); delete it, or compare into a new --out`);
  }
  const now = benchmarkOf(cfg);
  const was = (k: (typeof KEYS)[number]) => saved[k] ?? RECORDED_LATER[k];
  const differ = KEYS.filter((k) => was(k) !== now[k]);
  if (differ.length) {
    const show = (v: unknown) => (v === "" || v === 0 || v === undefined ? "default" : JSON.stringify(v));
    throw new ConfigError(
      `${outDir} holds a comparison of other settings (${differ.map((k) => `${k}: ${show(was(k))} there, ${show(now[k])} here`).join("; ")}); compare into a new --out (or delete that folder)`,
    );
  }
}

/**
 * Record what `outDir` compares: after checkCompareFolder, before the first run (`onlyIfNew`: a
 * folder that holds runs without a record is recorded once they were checked against `cfg`).
 */
export function recordCompareFolder(outDir: string, cfg: RunConfig, o: { onlyIfNew?: boolean } = {}): void {
  if (o.onlyIfNew && !holdsNoRun(outDir)) return;
  mkdirSync(outDir, { recursive: true });
  writeFileAtomic(join(outDir, FILE), `${JSON.stringify(benchmarkOf(cfg), null, 2)}\n`);
}
