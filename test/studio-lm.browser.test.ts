/**
 * The decoder page (studio/lm.html) in Debian's Chromium: LoRA on every linear layer of the tiny
 * Llama fixture with an int4 and with an f16 base, trained on onnxruntime-web's WebAssembly
 * backend. The page's step losses must be Node's for the same run (so onnxruntime-web runs
 * com.microsoft.MatMulNBits, the block-wise DequantizeLinear, and the float16 Concat and Cast as
 * native ONNX Runtime does), the loss must fall, and the tab's memory stays under WebAssembly's
 * 4 GiB. Driven through its controls (chosen files, typed text, Start, Download), the page trains
 * what Node trains on the same text, and the adapter it downloads loads in Node with Node's ΔW
 * and logits.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { join } from "node:path";
import { type Browser, type Download, type Page, chromium } from "playwright-core";
import { loadAdapter } from "../src/adapters/format.ts";
import { mergeAdapter } from "../src/adapters/merge.ts";
import { LmTokenizer } from "../src/data/lm-data.ts";
import { loadModel } from "../src/models/load.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { nodeRuntime } from "../src/runtime/session.ts";
import type { AdapterSet } from "../src/adapters/adapter-set.ts";
import { buildStudio } from "../studio/build.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../studio/chromium.ts";
import type { FineTuneResult } from "../studio/lm-page.ts";
import { type LmRunOptions, lmFineTune, textExamples } from "../studio/lm-run.ts";
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

for (const baseDtype of ["int4", "f16"] as const) {
  test(`an ${baseDtype}-base Llama fine-tunes in the tab with Node's step losses, a falling loss and the tab under 4 GiB`, { skip }, async (t) => {
    await page.goto(`${url}lm.html`);
    await page.waitForFunction("window.tensloraLm", null, { timeout: 60_000 });
    const web = (await page.evaluate(`window.tensloraLm.fineTune(${JSON.stringify({ ...RUN, model: `${url}llama/`, baseDtype })})`)) as FineTuneResult;
    assert.deepEqual(pageErrors, []);
    const node = await lmFineTune(loadModel(join(LM_FIXTURES, "llama"), { baseDtype }), RUN, nodeRuntime);
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
}

/** A cycle of seven words of the fixture's vocabulary (w6 … w127), long enough for a dozen 16-token examples. */
const TEXT = Array.from({ length: 200 }, (_, i) => `w${6 + (i % 7)}`).join(" ");
/** What the page's controls are set to below, as lmFineTune's options. */
const UI_RUN: LmRunOptions = {
  steps: 8,
  seqLen: 16,
  batch: 1,
  construction: "lora",
  rank: 4,
  ranks: "",
  targetModules: "all-linear",
  lr: 1e-2,
  seed: 0,
  evalEvery: 4,
};

test("through its controls the page trains Node's run on typed text, and its downloaded adapter has Node's ΔW and logits", { skip }, async (t) => {
  // one WebAssembly thread: with a pool of idle threads Chromium takes a minute to measure the tab's memory
  const tab = page;
  await tab.goto(`${url}lm.html?threads=1`);
  const dir = join(LM_FIXTURES, "llama");
  await tab.setInputFiles(
    "#model-files",
    ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].map((f) => join(dir, f)),
  );
  await tab.selectOption("#base-dtype", "int4");
  await tab.selectOption("#construction", UI_RUN.construction!);
  await tab.selectOption("#target-modules", UI_RUN.targetModules!);
  for (const [id, v] of [
    ["rank", UI_RUN.rank],
    ["lr", UI_RUN.lr],
    ["steps", UI_RUN.steps],
    ["batch", UI_RUN.batch],
    ["seq-len", UI_RUN.seqLen],
    ["eval-every", UI_RUN.evalEvery],
    ["seed", UI_RUN.seed],
  ] as const)
    await tab.fill(`#${id}`, String(v));
  await tab.selectOption("#data-kind", "text");
  await tab.selectOption("#text-format", "txt");
  await tab.fill("#text", TEXT);
  await tab.click("#start");
  await tab.waitForFunction("window.tensloraLm.state.result || window.tensloraLm.state.errors.length", null, { timeout: 120_000 });
  const state = (await tab.evaluate("window.tensloraLm.state")) as { losses: number[]; evals: { step: number; loss: number }[]; errors: string[] };
  assert.deepEqual([...pageErrors, ...state.errors], []);

  // Node on the same files, text and settings
  const int4 = loadModel(dir, { baseDtype: "int4" });
  const examples = textExamples(new LmTokenizer(dir), int4.config, "the text box.txt", TEXT, UI_RUN.seqLen, UI_RUN.seed);
  const node = await lmFineTune(int4, UI_RUN, nodeRuntime, { examples });
  assert.equal(state.losses.length, UI_RUN.steps);
  state.losses.forEach((l, i) => assert.ok(Math.abs(l - node.losses[i]) / node.losses[i] < 1e-4, `step ${i + 1}: page ${l}, node ${node.losses[i]}`));
  assert.deepEqual(
    state.evals.map((e) => e.step),
    [4, 8],
  );
  assert.ok(state.losses.at(-1)! < 0.6 * state.losses[0], `the loss falls: ${state.losses.map((l) => l.toFixed(3)).join(", ")}`);
  assert.equal(await tab.locator("#loss-chart polyline").count(), 2, "the training and evaluation curves are drawn");
  assert.match((await tab.locator("#step-time").textContent()) ?? "", /step time \d+\.\d+ s/);
  assert.match((await tab.locator("#tab-memory").textContent()) ?? "", /tab memory [\d,]+ MB/);

  const saved = join(root, "ui-adapter");
  mkdirSync(saved, { recursive: true });
  const downloads: Download[] = [];
  tab.on("download", (d) => downloads.push(d));
  await tab.click("#download");
  while (downloads.length < 2) await tab.waitForEvent("download", { timeout: 30_000 }).catch(() => assert.fail(`${downloads.length} of 2 files downloaded`));
  for (const d of downloads) await d.saveAs(join(saved, d.suggestedFilename()));

  // the download on the float32 base: each ΔW and the logits are those of Node's adapter
  const f32 = loadModel(dir);
  const web = loadAdapter(saved, modelContext(f32)).set;
  const mine = node.trained!.adapter!;
  const [mergedWeb, mergedNode] = [mergeAdapter(f32.weights, web), mergeAdapter(f32.weights, mine)];
  let worstDelta = 0;
  let changed = 0;
  for (const [k, base] of f32.weights) {
    const [a, b] = [mergedWeb.get(k)!.data, mergedNode.get(k)!.data];
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(b[i] - base.data[i]));
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
    }
    if (scale === 0) continue;
    changed++;
    worstDelta = Math.max(worstDelta, diff / scale);
  }
  assert.equal(changed, 7 * f32.config.numHiddenLayers, "every linear layer of every decoder layer has a ΔW");
  // Adam divides each gradient by its running RMS, so entries whose gradients are near zero move by
  // a full step either way of float rounding: ΔW agrees to about 1e-3 of its largest entry
  assert.ok(worstDelta < 2e-3, `ΔW differs by ${worstDelta} of its largest entry`);
  const ids = BigInt64Array.from(TEXT.split(" ").slice(0, UI_RUN.seqLen), (w) => BigInt(Number(w.slice(1))));
  const logits = async (set: AdapterSet) => {
    const built = buildModelGraph({ model: f32, adapter: set, batch: 1, seqLen: ids.length, trainable: "none" });
    const compiler = nodeRuntime.compiler();
    const graph = await compiler.compile(built.graph, { outputs: ["logits"] });
    const out = await graph.run(f32.family.feeds(f32.config, { input_ids: { dtype: "int64", shape: [1, ids.length], data: ids } }));
    graph.dispose();
    compiler.dispose();
    return out.logits.data as Float32Array;
  };
  const [lw, ln] = [await logits(web), await logits(mine)];
  let worstLogit = 0;
  for (let i = 0; i < ln.length; i++) worstLogit = Math.max(worstLogit, Math.abs(lw[i] - ln[i]) / (1 + Math.abs(ln[i])));
  assert.ok(worstLogit < 1e-4, `logits differ by ${worstLogit}`);
  t.diagnostic(
    `page losses ${state.losses.map((l) => l.toFixed(3)).join(" → ")}, evaluations ${state.evals.map((e) => `${e.step}: ${e.loss.toFixed(3)}`).join(", ")}; ` +
      `ΔW ${changed} matrices within ${worstDelta.toExponential(2)}, logits within ${worstLogit.toExponential(2)} of Node's adapter`,
  );
});

test("Stop ends a run after the current step, keeping the adapter of its latest evaluation", { skip }, async () => {
  // the page and model of the test above, loaded already
  await page.fill("#steps", "5000");
  await page.fill("#eval-every", "5");
  await page.click("#start");
  await page.waitForFunction("window.tensloraLm.state.losses.length >= 12", null, { timeout: 60_000 });
  await page.click("#stop");
  await page.waitForFunction("window.tensloraLm.state.result || window.tensloraLm.state.errors.length", null, { timeout: 60_000 });
  const state = (await page.evaluate("window.tensloraLm.state")) as { result: FineTuneResult; errors: string[] };
  assert.deepEqual(state.errors, []);
  assert.ok(state.result.interrupted);
  assert.ok(state.result.losses.length >= 12 && state.result.losses.length < 5000, `${state.result.losses.length} steps`);
  const kept = state.result.evals.at(-1)!.step;
  assert.match(
    (await page.locator("#run-status").textContent()) ?? "",
    new RegExp(`stopped after \\d+ steps; the adapter is the one evaluated at step ${kept}`),
  );
  assert.equal(await page.locator("#download").isEnabled(), true);
});
