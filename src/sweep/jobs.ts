/**
 * What a queued run is: one comparison run (an arm × budget × seed of `compare`) or one `train` run of a
 * grid, with a job id hashed from its resolved settings, so submitting the same run twice names
 * the same job (BullMQ then keeps the first) and finished runs are reused.
 */
import { createHash } from "node:crypto";
import { ConfigError } from "../errors.ts";
import { type Arm, type ArmGrid, type Budget, budgetLabel, expandArms, isBaseline } from "../experiments/arms.ts";
import { DEFAULTS, type RunConfig, applyConfig } from "../experiments/run-config.ts";
import type { RunSummary } from "../experiments/compare.ts";

/** One queued job: a comparison run (method, budget, seed) or a single training run. */
export type RunJob =
  /** `budget` null: a baseline, which runs once whatever the budgets. */
  | { kind: "compare"; config: RunConfig; arm: Arm; budget: Budget | null; seed: number; fullLr: number; dryRun: boolean }
  | { kind: "train"; config: RunConfig; dryRun: boolean };

/** What a finished job returns into Redis. */
export interface JobResult {
  /** Null for a dry run. */
  summary: RunSummary | null;
  backboneParams: number;
  /** The metric the run reported, resolved from the task ("" in a config means the task's first). */
  metric: string;
  /** A comparison run's budget in parameters on the worker's model (absent for baselines and grid runs). */
  budget?: { label: string; params: number };
  /** The worker that finished it (host:pid). */
  worker: string;
  /** The checkpoint step it continued from (0: from scratch). */
  resumedFromStep: number;
  seconds: number;
}

/** One run of a submitted sweep: its job, its row in the results table and its seed. */
export interface SweepRun {
  id: string;
  label: string;
  seed: number;
}

/** A sweep as stored in Redis: its name, kind, jobs and when it was submitted. */
export interface SweepRecord {
  name: string;
  kind: RunJob["kind"];
  metric: string;
  isoLoraRank: number;
  /** Row order of the results table (a comparison's: its arm names). */
  labels: string[];
  /** A comparison's arms, in row order (a grid's rows are its labels). */
  arms?: Arm[];
  /** The share of the training data held out to select the evaluation (0: selected on test). */
  valFraction: number;
  submittedAt: number;
  runs: SweepRun[];
}

/** JSON with sorted keys: the same settings give the same text whatever order they were written in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** ONNX Runtime's thread count is the worker's business (as in the trainer's checkpoint hash), so it is not part of a run's identity. */
export function jobId(job: RunJob): string {
  const { threads: _threads, ...config } = job.config;
  return `run-${createHash("sha256")
    .update(canonical({ ...job, config }))
    .digest("hex")
    .slice(0, 24)}`;
}

/** What `jobId` produces: the only ids a worker accepts, so an id can never name a folder outside its artifacts. */
const JOB_ID = /^run-[0-9a-f]{24}$/;

/** An arm name is a folder name: letters, digits and "+._-", not starting with a dot. */
const ARM_NAME = /^[A-Za-z0-9_][\w+.-]*$/;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function onlyKeys(o: Record<string, unknown>, keys: readonly string[], what: string): void {
  const extra = Object.keys(o).find((k) => !keys.includes(k));
  if (extra !== undefined) throw new ConfigError(`${what}: unknown key ${JSON.stringify(extra)}; valid keys: ${keys.join(", ")}`);
}

function parseBudget(v: unknown, what: string): Budget | null {
  if (v === null) return null;
  if (isRecord(v) && v.kind === "iso-lora" && Number.isInteger(v.rank) && (v.rank as number) > 0 && Object.keys(v).length === 2)
    return { kind: "iso-lora", rank: v.rank as number };
  if (isRecord(v) && v.kind === "params" && Number.isInteger(v.count) && (v.count as number) > 0 && Object.keys(v).length === 2)
    return { kind: "params", count: v.count as number };
  throw new ConfigError(
    `${what}: "budget" must be null, {"kind":"iso-lora","rank":N} or {"kind":"params","count":N} with N a positive integer, got ${JSON.stringify(v)}`,
  );
}

function parseArm(v: unknown, what: string): Arm {
  if (!isRecord(v)) throw new ConfigError(`${what}: "arm" must be an object, got ${JSON.stringify(v)}`);
  onlyKeys(v, ["name", "method", "factorization", "headLayout", "coreLrScale", "ranks", "lr"], `${what} arm`);
  const { name, ...settings } = v;
  if (typeof name !== "string" || !ARM_NAME.test(name))
    throw new ConfigError(
      `${what}: the arm name names a folder and must be letters, digits, "+", ".", "_" or "-" not starting with "." (got ${JSON.stringify(name)})`,
    );
  // the grid's own checks: a known construction, factorisation, head layout and rank mode
  const [arm] = expandArms({
    methods: [settings.method as string],
    factorizations: [settings.factorization as Arm["factorization"]],
    headLayouts: [settings.headLayout as Arm["headLayout"]],
    coreLrScales: [settings.coreLrScale as number],
    rankModes: [settings.ranks as Arm["ranks"]],
  });
  if (settings.lr === undefined) return { ...arm, name };
  if (typeof settings.lr !== "number" || !(settings.lr > 0 && settings.lr <= 1))
    throw new ConfigError(`${what}: the arm's "lr" must be a number in (0, 1], got ${JSON.stringify(settings.lr)}`);
  return { ...arm, lr: settings.lr, name };
}

/**
 * A job as read back from Redis, where anyone who can write to the queue could have put it: its
 * payload is checked as the submitter's flags are (unknown keys refused, not dropped) and its id
 * must be the hash of that payload, so the id is a plain folder name and names these settings.
 */
export function parseRunJob(id: string | undefined, raw: unknown): RunJob {
  const what = `queued job ${JSON.stringify(id)}`;
  if (typeof id !== "string" || !JOB_ID.test(id))
    throw new ConfigError(`${what}: a job id must be run-<24 hex digits> as tenslora submits it; refusing a job added by other means`);
  if (!isRecord(raw) || (raw.kind !== "compare" && raw.kind !== "train"))
    throw new ConfigError(`${what}: the payload must be an object with "kind" "compare" or "train", got ${JSON.stringify(raw)?.slice(0, 80)}`);
  if (!isRecord(raw.config)) throw new ConfigError(`${what}: "config" must be an object of run settings`);
  const config = applyConfig(DEFAULTS, raw.config, `${what} config`);
  if (typeof raw.dryRun !== "boolean") throw new ConfigError(`${what}: "dryRun" must be true or false, got ${JSON.stringify(raw.dryRun)}`);
  let job: RunJob;
  if (raw.kind === "train") {
    onlyKeys(raw, ["kind", "config", "dryRun"], what);
    job = { kind: "train", config, dryRun: raw.dryRun };
  } else {
    onlyKeys(raw, ["kind", "config", "arm", "budget", "seed", "fullLr", "dryRun"], what);
    if (!Number.isInteger(raw.seed) || (raw.seed as number) < 0)
      throw new ConfigError(`${what}: "seed" must be an integer ≥ 0, got ${JSON.stringify(raw.seed)}`);
    if (typeof raw.fullLr !== "number" || !(raw.fullLr > 0 && raw.fullLr <= 1))
      throw new ConfigError(`${what}: "fullLr" must be a number in (0, 1], got ${JSON.stringify(raw.fullLr)}`);
    const arm = parseArm(raw.arm, what);
    const budget = parseBudget(raw.budget, what);
    if ((budget === null) !== isBaseline(arm.method))
      throw new ConfigError(`${what}: ${isBaseline(arm.method) ? `the baseline "${arm.method}" takes no budget` : `the arm "${arm.name}" needs a budget`}`);
    job = { kind: "compare", config, arm, budget, seed: raw.seed as number, fullLr: raw.fullLr, dryRun: raw.dryRun };
  }
  if (jobId(job) !== id)
    throw new ConfigError(`${what}: its id is not the hash of its settings (${jobId(job)}); refusing a job altered or added outside tenslora`);
  return job;
}

/** A sweep file: `base` settings (keys as `train`'s flags, camelCase) and a `grid` of values per key. */
export interface SweepFile {
  name?: string;
  base: Record<string, unknown>;
  grid: Record<string, unknown[]>;
  dryRun: boolean;
}

/** Check a sweep file (JSON) and return its settings; errors name the file and the field. */
export function parseSweepFile(raw: unknown, source: string): SweepFile {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new ConfigError(`${source} must hold a JSON object {"base": {...}, "grid": {"key": [values]}}`);
  const o = raw as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !["name", "base", "grid", "dryRun"].includes(k));
  if (extra.length) throw new ConfigError(`${source}: unknown key "${extra[0]}"; valid keys: name, base, grid, dryRun`);
  const obj = (k: string) => {
    const v = o[k] ?? {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`${source}: "${k}" must be an object, got ${JSON.stringify(v)}`);
    return v as Record<string, unknown>;
  };
  const grid = obj("grid");
  for (const [k, v] of Object.entries(grid)) {
    if (!Array.isArray(v) || v.length === 0) throw new ConfigError(`${source}: grid "${k}" must be a non-empty list of values, got ${JSON.stringify(v)}`);
  }
  if (o.name !== undefined && (typeof o.name !== "string" || !/^[\w.-]+$/.test(o.name)))
    throw new ConfigError(`${source}: "name" must be letters, digits, ".", "_" or "-", got ${JSON.stringify(o.name)}`);
  if (o.dryRun !== undefined && typeof o.dryRun !== "boolean")
    throw new ConfigError(`${source}: "dryRun" must be true or false, got ${JSON.stringify(o.dryRun)}`);
  return { name: o.name as string | undefined, base: obj("base"), grid: grid as Record<string, unknown[]>, dryRun: o.dryRun === true };
}

/** Every combination of the grid's values, the last key varying fastest. */
export function expandGrid(grid: Record<string, unknown[]>): Record<string, unknown>[] {
  let points: Record<string, unknown>[] = [{}];
  for (const [k, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

/** A run's row in the table: the construction and each other swept setting except the seed (seeds are averaged). */
export function gridLabel(cfg: RunConfig, grid: Record<string, unknown[]>): string {
  const varying = Object.keys(grid).filter((k) => k !== "seed" && k !== "construction" && grid[k].length > 1);
  return [cfg.construction, ...varying.map((k) => `${k}=${cfg[k as keyof RunConfig]}`)].join(" ");
}

/** The jobs of a sweep file; `resolve` turns one grid point (over `base`) into a validated RunConfig. */
export function sweepJobs(
  file: SweepFile,
  resolve: (values: Record<string, unknown>) => RunConfig,
): { jobs: RunJob[]; runs: SweepRun[]; labels: string[]; base: RunConfig } {
  const jobs: RunJob[] = [];
  const runs: SweepRun[] = [];
  const labels: string[] = [];
  for (const point of expandGrid(file.grid)) {
    const config = resolve({ ...file.base, ...point });
    const job: RunJob = { kind: "train", config, dryRun: file.dryRun };
    const label = gridLabel(config, file.grid);
    if (!labels.includes(label)) labels.push(label);
    jobs.push(job);
    runs.push({ id: jobId(job), label, seed: config.seed });
  }
  return { jobs, runs, labels, base: resolve(file.base) };
}

/** The jobs of `compare --queue`: one per arm × budget × seed, each exactly the in-process comparison's run. */
export function compareJobs(
  config: RunConfig,
  s: ArmGrid & { budgets: Budget[]; seeds: number[]; fullLr: number; dryRun: boolean },
): { jobs: RunJob[]; runs: SweepRun[]; arms: Arm[] } {
  const arms = expandArms(s);
  if (!s.seeds.length) throw new ConfigError("compare needs at least one seed");
  if (new Set(s.budgets.map(budgetLabel)).size !== s.budgets.length)
    throw new ConfigError(`a budget is listed twice: ${s.budgets.map(budgetLabel).join(", ")}`);
  const jobs: RunJob[] = [];
  const runs: SweepRun[] = [];
  for (const arm of arms) {
    for (const budget of isBaseline(arm.method) ? [null] : s.budgets) {
      for (const seed of s.seeds) {
        const job: RunJob = { kind: "compare", config, arm, budget, seed, fullLr: s.fullLr, dryRun: s.dryRun };
        jobs.push(job);
        runs.push({ id: jobId(job), label: arm.name, seed });
      }
    }
  }
  return { jobs, runs, arms };
}

/** A default sweep name from its job ids: the same runs give the same name. */
export function sweepName(prefix: string, runs: SweepRun[]): string {
  return `${prefix}-${createHash("sha256")
    .update(runs.map((r) => r.id).join(","))
    .digest("hex")
    .slice(0, 8)}`;
}
