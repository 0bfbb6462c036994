/**
 * The decoder page (studio/lm.html) in Debian's Chromium: LoRA on every linear layer of the tiny
 * Llama fixture with an int4 base, trained on onnxruntime-web's WebAssembly backend. The page's
 * step losses must be Node's for the same run (so onnxruntime-web runs com.microsoft.MatMulNBits
 * and the block-wise DequantizeLinear as native ONNX Runtime does), the loss must fall, and the
 * tab's memory stays under WebAssembly's 4 GiB.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { loadModel } from "../src/models/load.ts";
import { nodeRuntime } from "../src/runtime/session.ts";
import { buildStudio } from "../studio/build.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../studio/chromium.ts";
import type { FineTuneResult } from "../studio/lm-page.ts";
import { lmFineTune } from "../studio/lm-run.ts";
import { serveStudio } from "../studio/serve.ts";
import { LM_FIXTURES } from "./lm-golden.ts";
import { tempDir } from "./make-data.ts";
import { CHROMIUM_DEP, needs } from "./system-deps.ts";

const skip = needs(CHROMIUM_DEP);
const root = tempDir("tenslora-studio-lm-");
const RUN = { steps: 8, seqLen: 16, lr: 1e-2 };
let server: Server | undefined;
let url = "";
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  const site = await buildStudio(join(root, "site"));
  mkdirSync(join(site, "llama"));
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(LM_FIXTURES, "llama", f), join(site, "llama", f));
  ({ server, url } = await serveStudio(site, 0));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, "--enable-blink-features=ForceEagerMeasureMemory"] });
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  server?.close();
});

test("an int4-base Llama fine-tunes in the tab with Node's step losses, a falling loss and the tab under 4 GiB", { skip }, async (t) => {
  await page.goto(`${url}lm.html`);
  await page.waitForFunction("window.tensloraLm", null, { timeout: 60_000 });
  const web = (await page.evaluate(`window.tensloraLm.fineTune(${JSON.stringify({ ...RUN, model: `${url}llama/`, baseDtype: "int4" })})`)) as FineTuneResult;
  assert.deepEqual(pageErrors, []);
  const node = await lmFineTune(loadModel(join(LM_FIXTURES, "llama"), { baseDtype: "int4" }), RUN, nodeRuntime);
  assert.equal(web.losses.length, RUN.steps);
  let worst = 0;
  for (let i = 0; i < RUN.steps; i++) {
    const rel = Math.abs(web.losses[i] - node.losses[i]) / node.losses[i];
    assert.ok(rel < 1e-4, `step ${i + 1}: page ${web.losses[i]}, node ${node.losses[i]}`);
    worst = Math.max(worst, rel);
  }
  const [first, last] = [web.losses[0], web.losses.at(-1)!];
  assert.ok(last < 0.6 * first, `the loss falls: ${web.losses.map((l) => l.toFixed(3)).join(", ")}`);
  assert.ok(web.heldBytes.quantized > 0, "the base is held quantized in the tab");
  const measured = web.memory.measuredBytes;
  assert.ok(measured !== undefined && measured > 0, "the cross-origin isolated page measures its memory");
  assert.ok(measured < 4 * 2 ** 30, `the tab holds ${measured} bytes`);
  t.diagnostic(
    `losses ${web.losses.map((l) => l.toFixed(3)).join(" → ")}; worst relative difference to Node ${worst.toExponential(2)}; ` +
      `tab memory ${(measured / 2 ** 20).toFixed(1)} MiB (JS heap ${((web.memory.jsHeapUsedBytes ?? 0) / 2 ** 20).toFixed(1)} MiB); ` +
      `median step ${(web.stepSeconds.sort((a, b) => a - b)[web.stepSeconds.length >> 1] * 1000).toFixed(1)} ms`,
  );
});
