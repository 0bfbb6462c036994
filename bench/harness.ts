/**
 * Shared benchmark machinery: timing (warm-ups, medians), FLOP counting over the IR, peak RSS,
 * the PyTorch peer runner, and the output convention (a table, then ONE JSON line last).
 * Benchmarks are measurements, never tests: nothing here asserts a timing.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Graph, Node, Value } from "../src/ir/graph.ts";
import { Op } from "../src/ir/ops.ts";
import { parseEinsum } from "../src/ir/infer.ts";
import type { WeightMap } from "../src/nn/params.ts";
import { Rng } from "../src/tensor/random.ts";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

export interface Timing {
  /** Median seconds per run. */
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function summarise(samples: number[]): Timing {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], samples };
}

export const median = (xs: number[]): number => summarise(xs).median;

/** Run `fn` `warmup` times untimed, then `runs` times timed; seconds per call. */
export async function timeIt(fn: () => unknown | Promise<unknown>, opts: { warmup?: number; runs?: number } = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 3;
  const runs = opts.runs ?? 7;
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return summarise(samples);
}

/** Peak resident set size of this process so far, in MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

export const threads = (): number => Number(process.env.BENCH_THREADS ?? cpus().length);

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? "unknown CPU"}, ${c.length} cores`;
}

// ---------------------------------------------------------------------------------------------
// FLOPs

/** Nodes that the named outputs need (what the exporter emits). */
export function liveNodes(graph: Graph, outputs?: string[]): Node[] {
  const names = outputs ?? [...graph.outputs.keys()];
  const need = new Set<Value>(names.map((n) => graph.outputs.get(n)!));
  const keep: Node[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i];
    if (n.outputs.some((o) => need.has(o))) {
      keep.push(n);
      for (const x of n.inputs) need.add(x);
    }
  }
  return keep.reverse();
}

const numel = (shape: readonly (number | string)[]): number => shape.reduce<number>((a, d) => a * (d as number), 1);

/**
 * FLOPs (2 per multiply-add) of the contractions a graph performs: MatMul (M·N·K per batch entry)
 * and Einsum (pairwise, left to right, as ONNX Runtime evaluates it). Elementwise work is not
 * counted, so GFLOP/s compares directly with a GEMM's rate.
 */
export function graphFlops(graph: Graph, outputs?: string[]): number {
  let flops = 0;
  for (const n of liveNodes(graph, outputs)) {
    if (n.op === Op.MatMul) {
      const [A] = n.inputs;
      const y = n.outputs[0];
      const p = (n as Node<Op.MatMul>).params;
      const K = (p.transA ? A.shape.at(-2) : A.shape.at(-1)) as number;
      flops += 2 * numel(y.shape) * K;
    } else if (n.op === Op.QuantMatMul) {
      flops += 2 * numel(n.outputs[0].shape) * (n.inputs[0].shape.at(-1) as number);
    } else if (n.op === Op.Einsum) {
      const { ins, out } = parseEinsum((n as Node<Op.Einsum>).params.equation, n.inputs.length);
      const size = new Map<string, number>();
      ins.forEach((s, i) => [...s].forEach((c, k) => size.set(c, n.inputs[i].shape[k] as number)));
      // left-to-right pairwise: keep the indices still needed by later operands or the output
      let cur = ins[0];
      for (let i = 1; i < ins.length; i++) {
        const later = new Set([...out, ...ins.slice(i + 1).join("")]);
        const all = new Set([...cur, ...ins[i]]);
        const idx = [...all];
        const prod = idx.reduce((a, c) => a * size.get(c)!, 1);
        const contracted = idx.some((c) => !later.has(c));
        flops += contracted ? 2 * prod : prod;
        cur = idx.filter((c) => later.has(c)).join("");
      }
    }
  }
  return flops;
}

// ---------------------------------------------------------------------------------------------
// Random models

/** A weight map of the given shapes with N(0, 0.02²) weights, unit LayerNorm scales and zero biases. */
export function randomWeights(shapes: Map<string, number[]>, seed = 1): WeightMap {
  const rng = new Rng(seed);
  const w: WeightMap = new Map();
  for (const [name, shape] of shapes) {
    const n = numel(shape);
    let data: Float32Array;
    if (/norm|LayerNorm/.test(name) && name.endsWith(".weight")) data = new Float32Array(n).fill(1);
    else if (name.endsWith(".bias")) data = new Float32Array(n);
    else data = rng.normalArray(n, 0.02);
    w.set(name, { shape, data });
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// The PyTorch peer

export interface TorchVariant {
  name: string;
  env: Record<string, string | undefined>;
}

/** Best configuration here: 2 threads, OpenMP workers sleep instead of spinning against OpenBLAS's. */
export const TORCH_BEST: TorchVariant = {
  name: `torch (${threads()} thr, OMP_WAIT_POLICY=PASSIVE)`,
  env: { OMP_WAIT_POLICY: "PASSIVE", OMP_NUM_THREADS: String(threads()) },
};
/** Default configuration: the environment as is. */
export const TORCH_DEFAULT: TorchVariant = { name: "torch (default env)", env: {} };
/** On a GPU, best: matmuls and convolutions in TF32 on the tensor cores. */
export const TORCH_CUDA_TF32: TorchVariant = { name: "torch CUDA (TF32)", env: {} };
/** On a GPU, torch's defaults: fp32 matmuls, TF32 convolutions. */
export const TORCH_CUDA_DEFAULT: TorchVariant = { name: "torch CUDA (defaults)", env: {} };

let torchProbe: { ok: boolean; python?: string; version?: string; why?: string } | undefined;

/**
 * Whether PyTorch can run: `python3 -c "import torch"` (or $BENCH_PYTHON). When the `python3`
 * on PATH lacks torch (e.g. a pyenv shim), Debian's /usr/bin/python3 is tried as well, since that
 * is where `apt-get install python3-torch` puts it.
 */
export function torchStatus(): { ok: boolean; python?: string; version?: string; why?: string } {
  if (!torchProbe) {
    if (process.env.BENCH_NO_TORCH) {
      torchProbe = { ok: false, why: "BENCH_NO_TORCH is set" };
    } else {
      const candidates = process.env.BENCH_PYTHON ? [process.env.BENCH_PYTHON] : ["python3", "/usr/bin/python3"];
      let why = "";
      for (const py of candidates) {
        const r = spawnSync(py, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
        if (r.status === 0) {
          torchProbe = { ok: true, python: py, version: r.stdout.trim() };
          break;
        }
        why ||= `${py}: ${(r.error?.message ?? (r.stderr ?? "").trim().split("\n").at(-1)) || `exit ${r.status}`}`;
      }
      torchProbe ??= { ok: false, why };
    }
    if (!torchProbe.ok) {
      console.log(
        `PyTorch is missing (${torchProbe.why}): the PyTorch columns are skipped. ` + "On Debian: apt-get install python3-torch libopenblas0-pthread",
      );
    }
  }
  return torchProbe;
}

/**
 * Run bench/torch/<script>.py with `args` (JSON on argv[1]) under an environment variant; the
 * script prints one JSON object as its last stdout line. Returns undefined when torch is missing
 * or the script fails (the failure is printed, the benchmark goes on).
 */
export function runTorch<T = Record<string, unknown>>(script: string, args: object, variant: TorchVariant, timeoutS = 1800): T | undefined {
  if (!torchStatus().ok) return undefined;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...variant.env })) if (v !== undefined) env[k] = v;
  const r = spawnSync(torchStatus().python!, [join(BENCH_DIR, "torch", `${script}.py`), JSON.stringify(args)], {
    env,
    encoding: "utf8",
    timeout: timeoutS * 1000,
    maxBuffer: 64 << 20,
  });
  const lines = (r.stdout ?? "").trim().split("\n");
  if (r.status !== 0) {
    console.log(
      `${variant.name}: ${script}.py failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`,
    );
    return undefined;
  }
  try {
    return JSON.parse(lines.at(-1)!) as T;
  } catch {
    console.log(`${variant.name}: ${script}.py printed no JSON line`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Output

export type Cell = string | number | null | undefined;

const fmt = (c: Cell): string =>
  c === null || c === undefined ? "—" : typeof c === "number" ? (Math.abs(c) >= 100 ? c.toFixed(1) : Math.abs(c) >= 1 ? c.toFixed(3) : c.toPrecision(3)) : c;

export function table(header: string[], rows: Cell[][]): void {
  const cells = [header, ...rows.map((r) => r.map(fmt))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(cells[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells.slice(1)) console.log(line(r));
}

/** Numbers rounded for the JSON line (4 significant digits). */
function round(v: unknown): unknown {
  if (typeof v === "number") return Number.isFinite(v) ? Number(v.toPrecision(4)) : null;
  if (Array.isArray(v)) return v.map(round);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, round(x)]));
  return v;
}

/** The last line of every benchmark. */
export function emitJson(bench: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench, ...(round(fields) as object), machine: machine(), threads: threads() }));
}

export const ratio = (a: number | undefined | null, b: number | undefined | null): number | null =>
  a === undefined || a === null || b === undefined || b === null || b === 0 ? null : a / b;

// ---------------------------------------------------------------------------------------------
// Tensors shared with the PyTorch peer: <dir>/tensors.json (name → shape, offset) + tensors.bin (fp32)

export function writeTensors(dir: string, tensors: Map<string, { shape: number[]; data: Float32Array }>, stem = "tensors"): void {
  mkdirSync(dir, { recursive: true });
  const manifest: Record<string, { shape: number[]; offset: number }> = {};
  let offset = 0;
  for (const [k, t] of tensors) {
    manifest[k] = { shape: t.shape, offset };
    offset += t.data.length;
  }
  const all = new Float32Array(offset);
  for (const [k, t] of tensors) all.set(t.data, manifest[k].offset);
  writeFileSync(join(dir, `${stem}.bin`), new Uint8Array(all.buffer));
  writeFileSync(join(dir, `${stem}.json`), JSON.stringify(manifest));
}

export function readTensors(dir: string, stem = "tensors"): Map<string, { shape: number[]; data: Float32Array }> {
  const manifest = JSON.parse(readFileSync(join(dir, `${stem}.json`), "utf8")) as Record<string, { shape: number[]; offset: number }>;
  const buf = readFileSync(join(dir, `${stem}.bin`));
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return new Map(
    Object.entries(manifest).map(([k, { shape, offset }]) => [k, { shape, data: all.subarray(offset, offset + shape.reduce((a, b) => a * b, 1)) }]),
  );
}

/** A private scratch folder under the OS temp dir, removed at exit. */
export function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tenslora-bench-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime profiles

export interface ProfileSummary {
  runs: number;
  /** Milliseconds per run by op type, largest first. */
  byOp: { op: string; ms: number; nodes: number; share: number }[];
  /** Milliseconds per run by node, largest first (top 25). */
  byNode: { node: string; op: string; ms: number }[];
  totalMs: number;
}

/** The newest profile file written for `prefix` (ORT appends a timestamp). */
export function latestProfile(prefix: string): string | undefined {
  const dir = dirname(prefix) === "." ? process.cwd() : dirname(prefix);
  const stem = prefix.split("/").at(-1)!;
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(stem) && f.endsWith(".json"))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return files[0];
}

/** Per-op-type kernel time of an ORT profile, per run (skipping the first `skipRuns` runs). */
export function summariseProfile(path: string, skipRuns = 0): ProfileSummary {
  const events = JSON.parse(readFileSync(path, "utf8")) as { cat: string; name: string; dur: number; ts: number; args?: Record<string, string> }[];
  const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => a.ts - b.ts);
  const kept = runs.slice(skipRuns);
  const from = kept[0]?.ts ?? 0;
  const byOp = new Map<string, { us: number; nodes: Set<string> }>();
  const byNode = new Map<string, { op: string; us: number }>();
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < from) continue;
    const op = e.args?.op_name ?? "?";
    const node = e.name.slice(0, -"_kernel_time".length);
    const o = byOp.get(op) ?? { us: 0, nodes: new Set() };
    o.us += e.dur;
    o.nodes.add(node);
    byOp.set(op, o);
    const n = byNode.get(node) ?? { op, us: 0 };
    n.us += e.dur;
    byNode.set(node, n);
  }
  const n = Math.max(1, kept.length);
  const total = [...byOp.values()].reduce((a, o) => a + o.us, 0) / n / 1e3;
  return {
    runs: kept.length,
    totalMs: total,
    byOp: [...byOp].map(([op, o]) => ({ op, ms: o.us / n / 1e3, nodes: o.nodes.size, share: o.us / n / 1e3 / total })).sort((a, b) => b.ms - a.ms),
    byNode: [...byNode]
      .map(([node, o]) => ({ node, op: o.op, ms: o.us / n / 1e3 }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 25),
  };
}

export function printProfile(p: ProfileSummary, top = 15): void {
  console.log(`ONNX Runtime profile: ${p.runs} runs, kernel time ${p.totalMs.toFixed(1)} ms/run`);
  table(
    ["op type", "ms/run", "share %", "nodes"],
    p.byOp.slice(0, top).map((o) => [o.op, o.ms, 100 * o.share, o.nodes]),
  );
}

/**
 * Time several functions with their runs interleaved (each cycle runs every function once, in a
 * seeded random order), so slow phases of a shared machine hit all of them alike; each is warmed
 * up `warmup` times first. Seconds per call.
 */
export async function interleave(
  fns: (() => unknown | Promise<unknown>)[],
  opts: { warmup?: number; runs?: number; gapMs?: number } = {},
): Promise<number[][]> {
  // a function that resolves to a number reports its own time (a peer process timing itself)
  const warmup = opts.warmup ?? 3;
  const runs = opts.runs ?? 7;
  for (const fn of fns) for (let i = 0; i < warmup; i++) await fn();
  const samples = fns.map(() => [] as number[]);
  // a pause between runners lets the previous one's spinning worker threads go to sleep
  const gap = opts.gapMs ?? 0;
  const rng = new Rng(12345);
  for (let i = 0; i < runs; i++) {
    // a fresh order every cycle: no runner always follows the same one (a peer's BLAS threads
    // can keep a core busy for a while after its step)
    for (const k of rng.permutation(fns.length)) {
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      const t0 = process.hrtime.bigint();
      const r = await fns[k]();
      samples[k].push(typeof r === "number" ? r : Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return samples;
}

/**
 * `fn` as one sample of a steady state: a warm run, then the median time of `n` back-to-back runs.
 * A single short run after an idle gap mostly measures worker threads waking and caches refilling.
 */
export function burst(fn: () => unknown, n = 3): () => Promise<number> {
  return async () => (await timeIt(fn, { warmup: 1, runs: n })).median;
}

/**
 * A PyTorch peer kept alive between steps (bench/torch/<script>.py with "serve": true): it builds its
 * model once, then runs one step per request and replies with the step's own time, so its steps
 * can be interleaved with ours one by one.
 */
export class TorchPeer {
  #child: ChildProcessWithoutNullStreams;
  #lines: AsyncIterator<string>;
  private constructor(
    child: ChildProcessWithoutNullStreams,
    readonly info: Record<string, unknown>,
    lines: AsyncIterator<string>,
  ) {
    this.#child = child;
    this.#lines = lines;
  }

  static async start(script: string, args: object, variant: TorchVariant): Promise<TorchPeer | undefined> {
    if (!torchStatus().ok) return undefined;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...variant.env })) if (v !== undefined) env[k] = v;
    const child = spawn(torchStatus().python!, [join(BENCH_DIR, "torch", `${script}.py`), JSON.stringify({ ...args, serve: true })], { env });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr = (stderr + String(d)).slice(-2000)));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) {
      console.log(`${variant.name}: ${script}.py failed: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
      return undefined;
    }
    return new TorchPeer(child, JSON.parse(first.value) as Record<string, unknown>, lines);
  }

  /** One step; its time in seconds as the peer measured it. */
  step(): Promise<number> {
    return this.#timed("step");
  }

  /** A warm step, then the median time of `n` back-to-back steps, as the peer measured them. */
  burst(n: number): Promise<number> {
    return this.#timed(`burst ${n}`);
  }

  async #timed(command: string): Promise<number> {
    this.#child.stdin.write(`${command}\n`);
    const r = await this.#lines.next();
    if (r.done) throw new Error("the PyTorch peer exited");
    return (JSON.parse(r.value) as { t: number }).t;
  }

  /** Ask for the peer's final report (peak RSS …) and let it exit. */
  async close(): Promise<Record<string, unknown>> {
    this.#child.stdin.write("quit\n");
    const r = await this.#lines.next();
    this.#child.stdin.end();
    return r.done ? {} : (JSON.parse(r.value) as Record<string, unknown>);
  }
}
