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
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WEIGHTS_INDEX_FILE } from "../src/io/checkpoint.ts";
import { loadModel } from "../src/models/load.ts";
import { type BaseDType, parseBaseDType, withBaseDType } from "../src/models/quantize-base.ts";
import { heldBytes } from "../src/tensor/quantize.ts";
import { BENCH_DIR, emitJson, peakRssMiB, ratio, table } from "./harness.ts";
import { type FileDType, decoderShape, writeRandomCheckpoint } from "./models.ts";

/** How a child loads: plain float32, float32 then quantized, or quantized while reading. */
type Mode = { how: "f32" } | { how: "after" | "streamed"; dtype: Exclude<BaseDType, "f32"> };

const label = (m: Mode) => (m.how === "f32" ? "f32" : m.how === "after" ? `${m.dtype}, quantized after a float32 load` : `${m.dtype}, quantized while loading`);

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
    held += heldBytes(q);
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
  const raw = decoderShape(shapeName);
  const fileDtype = str("--file-dtype", "F32") as FileDType;
  if (fileDtype !== "F32" && fileDtype !== "BF16") throw new Error(`--file-dtype must be F32 or BF16, got ${fileDtype}`);
  const dtypes = str("--dtypes", "int4")
    .split(",")
    .map((d) => parseBaseDType(d.trim(), "--dtypes"))
    .filter((d): d is Exclude<BaseDType, "f32"> => d !== "f32");
  const dir = str("--dir", join(tmpdir(), `tenslora-load-quant-${shapeName}-${fileDtype}`));
  if (!existsSync(join(dir, WEIGHTS_INDEX_FILE))) {
    console.log(`writing a random ${shapeName} checkpoint (${fileDtype}, one shard per layer) to ${dir}`);
    writeRandomCheckpoint(dir, raw, fileDtype);
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
