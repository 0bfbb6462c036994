/**
 * `web-lm`: the decoder page (studio/lm.html) in Chromium on WebAssembly at a published shape with
 * random weights (written once as BF16 shards, one per layer): LoRA r=8 on every linear layer over
 * an int4 (or int8) base, a few steps at a short sequence. Reports the load, the step times, the
 * tab's measured memory, or the error that stopped it (a 4 GiB WebAssembly memory, a 2 GiB
 * ONNX protobuf). A measurement, not a test.
 *
 *   npm run bench -- web-lm [--shape llama-3.2-1b] [--base-dtype int4] [--steps 3] [--seq 32] [--threads 2] [--eval-every 0] [--dir <checkpoint folder>]
 */
import { existsSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { WEIGHTS_INDEX_FILE } from "../src/io/checkpoint.ts";
import { buildStudio } from "../studio/build.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../studio/chromium.ts";
import type { FineTuneResult } from "../studio/lm-page.ts";
import { serveStudio } from "../studio/serve.ts";
import { emitJson } from "./harness.ts";
import { decoderShape, writeRandomCheckpoint } from "./models.ts";

export async function run(argv: string[]): Promise<void> {
  const str = (flag: string, d: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : d;
  };
  const shapeName = str("--shape", "llama-3.2-1b");
  const raw = decoderShape(shapeName);
  const dir = str("--dir", join(tmpdir(), `tenslora-load-quant-${shapeName}-BF16`));
  if (!existsSync(join(dir, WEIGHTS_INDEX_FILE))) {
    console.log(`writing a random ${shapeName} checkpoint (BF16, one shard per layer) to ${dir}`);
    writeRandomCheckpoint(dir, raw, "BF16");
  }
  const root = join(tmpdir(), `tenslora-web-lm-${process.pid}`);
  const site = await buildStudio(join(root, "site"));
  symlinkSync(dir, join(site, "model"));
  const { server, url } = await serveStudio(site, 0);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, "--enable-blink-features=ForceEagerMeasureMemory"] });
  const opts = {
    model: `${url}model/`,
    baseDtype: str("--base-dtype", "int4"),
    steps: Number(str("--steps", "3")),
    seqLen: Number(str("--seq", "32")),
    threads: Number(str("--threads", "2")),
    evalEvery: Number(str("--eval-every", "0")),
  };
  const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const before = load();
  let result: FineTuneResult | undefined;
  let error: string | undefined;
  try {
    const page = await browser.newPage();
    page.on("console", (m) => console.log(`page: ${m.text()}`));
    await page.goto(`${url}lm.html`);
    await page.waitForFunction("window.tensloraLm", null, { timeout: 60_000 });
    result = (await page.evaluate(`window.tensloraLm.fineTune(${JSON.stringify(opts)})`)) as FineTuneResult;
  } catch (e) {
    error = (e as Error).message.split("\n").slice(0, 6).join(" | ");
  } finally {
    await browser.close();
    server.close();
  }
  const version = browser.version();
  console.log(result ? JSON.stringify(result) : `failed: ${error}`);
  emitJson("web-lm", { shape: shapeName, ...opts, chromium: version, load_before: before, load_after: load(), result, error });
}
