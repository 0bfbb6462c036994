/**
 * `step-llm --dtypes f32,int8,int4`: the LoRA step of step-llm (qkv_depth's with `--qkv-depth-only`) once per base dtype, each in its own
 * child process (peak RSS is a process's, and a float32 model once loaded would stay in it), in
 * turn for `--rounds` rounds so that load changes reach every dtype alike. Reports each dtype's
 * peak RSS and median step time, the ratios to f32, and the load average before each child.
 * The other flags go to the children as they are.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseBaseDType } from "../src/models/quantize-base.ts";
import { BENCH_DIR, emitJson, median, ratio, table } from "./harness.ts";

interface ChildResult {
  s: number;
  rss: number;
  load: string;
}

function runChild(args: string[]): Promise<ChildResult> {
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(BENCH_DIR, "main.ts"), "step-llm", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d;
      process.stdout.write(d);
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out
        .trim()
        .split("\n")
        .reverse()
        .find((l) => l.startsWith("{"));
      if (code !== 0 || !line) return reject(new Error(`step-llm ${args.join(" ")} exited with ${code}`));
      const j = JSON.parse(line) as { runners: { s: number }[]; peak_rss_mib: number };
      resolve({ s: j.runners[0].s, rss: j.peak_rss_mib, load });
    });
  });
}

export async function run(argv: string[]): Promise<void> {
  const i = argv.indexOf("--dtypes");
  const dtypes = argv[i + 1].split(",").map((d) => parseBaseDType(d.trim(), "--dtypes"));
  const r = argv.indexOf("--rounds");
  const rounds = r >= 0 ? Number(argv[r + 1]) : 1;
  const own = new Set([i, i + 1, ...(r >= 0 ? [r, r + 1] : [])]);
  const pass = argv.filter((a, k) => !own.has(k) && a !== "--base-dtype" && argv[k - 1] !== "--base-dtype");
  const results = new Map(dtypes.map((d) => [d, [] as ChildResult[]]));
  for (let round = 0; round < rounds; round++) {
    for (const d of dtypes)
      results.get(d)!.push(await runChild([...pass, "--base-dtype", d, ...(pass.includes("--qkv-depth-only") ? [] : ["--lora-only"]), "--no-torch"]));
  }
  const f32 = results.get("f32");
  const base = f32 && { s: median(f32.map((x) => x.s)), rss: Math.max(...f32.map((x) => x.rss)) };
  const rows = dtypes.map((d) => {
    const xs = results.get(d)!;
    const s = median(xs.map((x) => x.s));
    const rss = Math.max(...xs.map((x) => x.rss));
    return { d, s, rss, sRatio: ratio(s, base?.s), rssRatio: ratio(rss, base?.rss), loads: xs.map((x) => x.load).join(" | ") };
  });
  table(
    ["base dtype", "s/step (median)", "peak RSS MiB (max)", "time / f32", "RSS / f32", "load average before each child"],
    rows.map((x) => [x.d, x.s, x.rss, x.sRatio, x.rssRatio, x.loads]),
  );
  emitJson("step-llm-dtypes", {
    argv: pass.join(" "),
    rounds,
    dtypes: rows.map(({ d, s, rss, sRatio, rssRatio, loads }) => ({ dtype: d, s, peak_rss_mib: rss, time_ratio: sRatio, rss_ratio: rssRatio, load: loads })),
  });
}
