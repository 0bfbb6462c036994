/**
 * `load-quant`: peak RSS of loading a decoder checkpoint from disk, each way in its own child
 * process (peak RSS is a process's): float32; float32 then quantized (`withBaseDType(loadModel)`,
 * which holds the whole float32 model first); and quantized tensor by tensor while reading
 * (`loadModel(dir, { baseDtype })`). The checkpoint has random weights at a published shape,
 * written once as HuggingFace shards (one per layer, as large checkpoints ship) in F32 or BF16.
 *
 *   npm run bench -- load-quant [--shape smollm2-135m|llama-3.2-1b|llama-3.2-3b] [--file-dtype F32|BF16]
 *                               [--dtypes int4,int8] [--dir <folder, kept for reuse>]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WEIGHTS_INDEX_FILE } from "../src/io/checkpoint.ts";
import { type TensorInput, writeSafetensors } from "../src/io/safetensors.ts";
import { FAMILIES, loadModel } from "../src/models/load.ts";
import { type BaseDType, parseBaseDType, withBaseDType } from "../src/models/quantize-base.ts";
import { MODEL_PRESETS } from "../src/pipeline/presets.ts";
import { BENCH_DIR, emitJson, peakRssMiB, randomWeights, ratio, table } from "./harness.ts";
import { SMOLLM2_135M } from "./models.ts";

type FileDType = "F32" | "BF16";

/** How a child loads: plain float32, float32 then quantized, or quantized while reading. */
type Mode = { how: "f32" } | { how: "after" | "streamed"; dtype: Exclude<BaseDType, "f32"> };

const label = (m: Mode) => (m.how === "f32" ? "f32" : m.how === "after" ? `${m.dtype}, quantized after a float32 load` : `${m.dtype}, quantized while loading`);

/** Write `raw`'s model with random weights as one shard per layer (and one for the rest) plus the index. */
function writeCheckpoint(dir: string, raw: Record<string, unknown>, fileDtype: FileDType): void {
  mkdirSync(dir, { recursive: true });
  const family = FAMILIES[raw.model_type as string];
  const shapes: Map<string, number[]> = family.parameterShapes(family.parseConfig(raw, "bench"));
  const groups = new Map<string, [string, number[]][]>();
  for (const [k, shape] of shapes) {
    const layer = /\.layers\.(\d+)\./.exec(k)?.[1];
    const shard = `model-${layer === undefined ? "rest" : layer.padStart(3, "0")}.safetensors`;
    groups.set(shard, [...(groups.get(shard) ?? []), [k, shape]]);
  }
  const weightMap: Record<string, string> = {};
  let seed = 1;
  for (const [shard, entries] of groups) {
    const tensors: Record<string, TensorInput> = {};
    for (const [k, t] of randomWeights(new Map(entries), seed++)) {
      // BF16 is a float32's high half (truncated: random weights need no rounding)
      tensors[k] =
        fileDtype === "F32"
          ? { dtype: "F32", shape: t.shape, data: t.data }
          : { dtype: "BF16", shape: t.shape, data: Uint16Array.from(new Uint32Array(t.data.buffer), (b) => b >>> 16) };
      weightMap[k] = shard;
    }
    writeSafetensors(join(dir, shard), tensors);
  }
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
  writeFileSync(join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

/** In the child: load `dir` as `mode`, then report the peak RSS, the seconds and the bytes the model holds. */
function child(dir: string, mode: Mode): void {
  const t0 = performance.now();
  const f32 = loadModel(dir, mode.how === "streamed" ? { baseDtype: mode.dtype } : {});
  const model = mode.how === "after" ? withBaseDType(f32, mode.dtype) : f32;
  const s = (performance.now() - t0) / 1000;
  let held = 0;
  let largest = 0;
  for (const t of model.weights.values()) {
    held += t.data.byteLength;
    largest = Math.max(largest, t.data.byteLength);
  }
  for (const q of model.quantized?.values() ?? []) {
    held += q.codes.byteLength + q.scales.byteLength;
    largest = Math.max(largest, q.rows * q.cols * 4);
  }
  console.log(JSON.stringify({ s, peak_rss_mib: peakRssMiB(), held_mib: held / 2 ** 20, largest_f32_mib: largest / 2 ** 20 }));
}

interface ChildResult {
  s: number;
  peak_rss_mib: number;
  held_mib: number;
  largest_f32_mib: number;
  load: string;
}

function runChild(dir: string, mode: Mode): Promise<ChildResult> {
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const args = ["--import", "tsx", join(BENCH_DIR, "main.ts"), "load-quant", "--dir", dir, "--child", mode.how, ...(mode.how === "f32" ? [] : [mode.dtype])];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d;
    });
    p.on("error", reject);
    p.on("exit", (code) => {
      const line = out.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !line.startsWith("{")) return reject(new Error(`load-quant child ${args.slice(3).join(" ")} exited with ${code}`));
      resolve({ ...(JSON.parse(line) as Omit<ChildResult, "load">), load });
    });
  });
}

export async function run(argv: string[]): Promise<void> {
  const str = (flag: string, d: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : d;
  };
  const c = argv.indexOf("--child");
  if (c >= 0) {
    const how = argv[c + 1] as Mode["how"];
    return child(str("--dir", ""), how === "f32" ? { how } : { how, dtype: parseBaseDType(argv[c + 2]) as Exclude<BaseDType, "f32"> });
  }
  const shapeName = str("--shape", "smollm2-135m");
  const raw = shapeName === "smollm2-135m" ? SMOLLM2_135M : MODEL_PRESETS[shapeName];
  if (!raw || raw.model_type === "vit" || raw.model_type === "roberta") throw new Error(`--shape ${shapeName}: not a decoder preset`);
  const fileDtype = str("--file-dtype", "F32") as FileDType;
  if (fileDtype !== "F32" && fileDtype !== "BF16") throw new Error(`--file-dtype must be F32 or BF16, got ${fileDtype}`);
  const dtypes = str("--dtypes", "int4")
    .split(",")
    .map((d) => parseBaseDType(d.trim(), "--dtypes"))
    .filter((d): d is Exclude<BaseDType, "f32"> => d !== "f32");
  const dir = str("--dir", join(tmpdir(), `tenslora-load-quant-${shapeName}-${fileDtype}`));
  if (!existsSync(join(dir, WEIGHTS_INDEX_FILE))) {
    console.log(`writing a random ${shapeName} checkpoint (${fileDtype}, one shard per layer) to ${dir}`);
    writeCheckpoint(dir, raw, fileDtype);
  }
  const modes: Mode[] = [
    { how: "f32" },
    ...dtypes.flatMap((dtype) => [
      { how: "streamed" as const, dtype },
      { how: "after" as const, dtype },
    ]),
  ];
  const results: ChildResult[] = [];
  for (const m of modes) results.push(await runChild(dir, m));
  const f32 = results[0].peak_rss_mib;
  table(
    ["load", "s", "peak RSS MiB", "RSS / f32", "model held MiB", "largest tensor as f32 MiB", "load average before"],
    modes.map((m, i) => [
      label(m),
      results[i].s,
      results[i].peak_rss_mib,
      ratio(results[i].peak_rss_mib, f32),
      results[i].held_mib,
      results[i].largest_f32_mib,
      results[i].load,
    ]),
  );
  emitJson("load-quant", { shape: shapeName, file_dtype: fileDtype, loads: modes.map((m, i) => ({ mode: label(m), ...results[i] })) });
}
