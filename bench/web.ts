/**
 * `npm run bench -- web`: steps/s of the embedded MNIST ViT's training step (qkv_depth at the
 * iso-LoRA-8 budget, batch 64, AdamW) in the studio page in Chromium, on WebAssembly and on
 * WebGPU, against Node's CPU step in the same run; ratios = Chromium / Node. Each side runs the
 * trainer; the step time is the median over steps after the first two. WebGPU here is
 * SwiftShader, a CPU emulation: it gets `--gpu-steps` steps (default 3) or `--gpu-timeout`
 * seconds, whichever comes first.
 */
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ensureEmbeddedModel, loadEmbedded, embeddedTransferData } from "../src/experiments/embedded.ts";
import { DEFAULTS, EMBEDDED_OVERRIDES, applyConfig } from "../src/experiments/run-config.ts";
import { adapterFor, trainConfig } from "../src/experiments/run-plan.ts";
import { nodeRuntime } from "../src/runtime/session.ts";
import { memoryRunStore } from "../src/train/run-store.ts";
import { train } from "../src/train/trainer.ts";
import { buildStudio } from "../studio/build.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../studio/chromium.ts";
import { serveStudio } from "../studio/serve.ts";
import { machine, median } from "./harness.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

const METHOD = "qkv_depth";

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

async function nodeStep(threads: number): Promise<number> {
  const cfg = applyConfig(applyConfig(DEFAULTS, EMBEDDED_OVERRIDES, "embedded"), { construction: METHOD, epochs: 1 }, "bench");
  const model = await loadEmbedded({ runtime: nodeRuntime, seed: cfg.seed });
  const { adapter, trainable } = adapterFor(model, cfg);
  const r = await train({
    model,
    adapter,
    trainable,
    data: embeddedTransferData(100, 200, cfg.seed),
    config: { ...trainConfig(cfg, model.family.task), threads },
    store: memoryRunStore(),
    runtime: nodeRuntime,
  });
  return r.stepSeconds;
}

export async function run(args: string[]): Promise<void> {
  const threads = flag(args, "--threads", 1);
  const gpuSteps = flag(args, "--gpu-steps", 3);
  const gpuTimeout = flag(args, "--gpu-timeout", 300);
  const backbone = await ensureEmbeddedModel({ runtime: nodeRuntime });
  const root = mkdtempSync(join(tmpdir(), "tenslora-bench-web-"));
  const site = await buildStudio(join(root, "site"), { backbone });
  const { server, url } = await serveStudio(site, 0);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const results: Record<string, { stepSeconds: number; steps: number } | { error: string }> = {};
  try {
    results.node = { stepSeconds: await nodeStep(threads), steps: 8 };
    for (const device of ["wasm", "webgpu"] as const) {
      const page = await browser.newPage();
      try {
        await page.goto(`${url}?device=${device}&threads=${threads}`);
        await page.waitForFunction("window.studio.backbone && window.studio.device", null, { timeout: 120_000 });
        await page.evaluate(`for (const b of document.querySelectorAll("input[name=method]")) b.checked = b.value === "${METHOD}"`);
        await page.fill("#epochs", "1");
        await page.click("#train");
        const want = device === "webgpu" ? gpuSteps : 8;
        await page
          .waitForFunction(`(window.studio.stepTimes.${METHOD} ?? []).length >= ${want} || window.studio.errors.length`, null, {
            timeout: gpuTimeout * 1000,
            polling: 500,
          })
          .catch(() => undefined);
        const errors = (await page.evaluate("window.studio.errors")) as string[];
        const times = (await page.evaluate(`window.studio.stepTimes.${METHOD} ?? []`)) as number[];
        if (errors.length) results[device] = { error: errors.join("; ") };
        else if (times.length < 2) results[device] = { error: `${times.length} steps in ${gpuTimeout} s` };
        else {
          const dts = times.slice(1).map((t, i) => (t - times[i]) / 1000);
          results[device] = { stepSeconds: median(dts.slice(Math.min(1, dts.length - 1))), steps: times.length };
        }
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
  const node = results.node as { stepSeconds: number };
  console.log(`embedded ViT training step (${METHOD}, batch 64), ${threads} thread(s); ${machine()}`);
  console.log("| where | s/step | steps/s | × Node CPU |");
  console.log("|---|---:|---:|---:|");
  for (const [k, v] of Object.entries(results)) {
    if ("error" in v) console.log(`| ${k} | – | – | (${v.error}) |`);
    else console.log(`| ${k} | ${v.stepSeconds.toFixed(3)} | ${(1 / v.stepSeconds).toFixed(2)} | ${(node.stepSeconds / v.stepSeconds).toFixed(3)} |`);
  }
  console.log(JSON.stringify({ bench: "web", threads, machine: machine(), results }));
}
