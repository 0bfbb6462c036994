/**
 * The studio page in Debian's Chromium (playwright-core, no browser download): it loads, a short
 * fine-tune on WebAssembly gives the step losses `tenslora train` gives in Node (stopped and
 * resumed on the way), the downloaded adapter evaluates to the page's accuracy in `tenslora eval`
 * and loads in `tenslora infer`, drawing a digit classifies it, corrupt weights or adapter files
 * show a message while the page keeps working, and pretraining in the tab takes the steps Node's
 * pretraining takes. The backbone is a seeded random ViT written where the CLI's cache expects the
 * pretrained one, so both sides train the same weights without pretraining first.
 */
import { type TestContext, after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "node:http";
import { type Browser, type Download, type Page, chromium } from "playwright-core";
import { digits } from "../src/experiments/embedded.ts";
import { EMBEDDED_CONFIG, PRETRAIN_CONFIG, VERSION, pretrainTask } from "../src/experiments/embedded-task.ts";
import { readSafetensors, serializeSafetensors } from "../src/io/safetensors.ts";
import { randomModel } from "../src/models/init.ts";
import { nodeRuntime } from "../src/runtime/session.ts";
import { saveModelFolder } from "../src/train/artifacts.ts";
import { memoryRunStore } from "../src/train/run-store.ts";
import { train } from "../src/train/trainer.ts";
import { buildStudio, bundleForBrowser } from "../studio/build.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../studio/chromium.ts";
import { CHROMIUM_DEP, needs } from "./system-deps.ts";
import { serveStudio } from "../studio/serve.ts";
import { BIN } from "./cli-helpers.ts";
import { cliEnv, tempDir } from "./make-data.ts";

const skip = needs(CHROMIUM_DEP);
const root = tempDir("tenslora-studio-");
const cache = join(root, "cache");
const EPOCHS = 3; // 8 steps an epoch (500 few-shot images, batch 64): 24 steps
let server: Server | undefined;
let url = "";
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

function tenslora(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: cliEnv(cache), encoding: "utf8", timeout: 240_000 });
  assert.equal(r.status, 0, `tenslora ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const studio = <T>(fn: string): Promise<T> => page.evaluate(`window.studio.${fn}`) as Promise<T>;

/** The step losses `tenslora train` logged in a run folder. */
function trainLosses(run: string): number[] {
  return readFileSync(join(run, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === "train")
    .map((r) => r.loss as number);
}

/** The first `n` step losses agree within 1e-4 relative; the worst difference is reported. */
function assertLossesMatch(t: TestContext, what: string, web: number[], node: number[], n: number): void {
  assert.ok(web.length >= n && node.length >= n, `${what}: ${web.length} page and ${node.length} Node losses, ${n} needed`);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const rel = Math.abs(web[i] - node[i]) / Math.abs(node[i]);
    assert.ok(rel < 1e-4, `${what} step ${i + 1}: page ${web[i]}, node ${node[i]} (relative difference ${rel.toExponential(2)})`);
    worst = Math.max(worst, rel);
  }
  t.diagnostic(`${what}: ${n} step losses, worst relative difference ${worst.toExponential(2)}`);
}

before(async () => {
  if (skip) return;
  const backbone = join(cache, VERSION);
  const model = randomModel(EMBEDDED_CONFIG, 7);
  saveModelFolder(backbone, model.rawConfig, model.weights);
  const site = await buildStudio(join(root, "site"), { backbone });
  ({ server, url } = await serveStudio(site, 0));
  // playwright starts Chromium with a fresh temporary profile
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await (await browser.newContext({ acceptDownloads: true })).newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  server?.close();
});

test("the page loads the backbone and the digits and says which device trains", { skip }, async () => {
  await page.goto(`${url}?device=wasm&threads=1`);
  await page.waitForFunction("window.studio.backbone && window.studio.device", null, { timeout: 60_000 });
  assert.match((await page.textContent("#device-note")) ?? "", /WebAssembly/);
  assert.match((await page.textContent("#backbone-status")) ?? "", /backbone\/model\.safetensors/);
  assert.deepEqual(pageErrors, []);
});

test("a fine-tune on WebAssembly, stopped and resumed, gives the losses and accuracy of `tenslora train`", { skip }, async (t) => {
  await page.evaluate(`for (const b of document.querySelectorAll("input[name=method]")) b.checked = b.value === "qkv_depth"`);
  await page.fill("#epochs", String(EPOCHS));
  await page.click("#train");
  await page.waitForFunction("(window.studio.losses.qkv_depth ?? []).length >= 3", null, { timeout: 120_000 });
  await page.click("#stop");
  await page.waitForFunction("window.studio.stopped && !window.studio.busy", null, { timeout: 60_000 });
  const atStop = (await studio<number[]>("losses.qkv_depth")).length;
  assert.ok(atStop < 8 * EPOCHS, `stopped at step ${atStop}`);
  await page.click("#resume");
  await page.waitForFunction("window.studio.rows.some((r) => r.run === 'qkv_depth')", null, { timeout: 240_000 });
  const web = await studio<number[]>("losses.qkv_depth");
  assert.equal(web.length, 8 * EPOCHS);

  const run = join(root, "node-run");
  tenslora(["train", "--construction", "qkv_depth", "--epochs", String(EPOCHS), "--out", run, "--threads", "1"]);
  assertLossesMatch(t, "WebAssembly", web, trainLosses(run), 20);
  const row = (await studio<{ run: string; best: number }[]>("rows")).find((r) => r.run === "qkv_depth")!;
  const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
  assert.equal(row.best, summary.best.test, "test accuracy at the step validation selected, in the page and in Node");
});

test("a fine-tune on WebGPU (SwiftShader) gives the step losses of `tenslora train`", { skip }, async (t) => {
  // SwiftShader emulates the GPU on the CPU (tens of seconds a step at batch 64): two steps at batch 8
  const gpu = await browser!.newPage();
  try {
    await gpu.goto(`${url}?device=webgpu&threads=1`);
    await gpu.waitForFunction("window.studio.backbone && window.studio.device", null, { timeout: 60_000 });
    assert.match((await gpu.textContent("#device-note")) ?? "", /WebGPU/);
    await gpu.evaluate(`for (const b of document.querySelectorAll("input[name=method]")) b.checked = b.value === "qkv_depth"`);
    await gpu.fill("#epochs", "1");
    await gpu.fill("#batch-size", "8");
    await gpu.click("#train");
    await gpu.waitForFunction("(window.studio.losses.qkv_depth ?? []).length >= 2 || window.studio.errors.length", null, { timeout: 300_000, polling: 500 });
    await gpu.click("#stop");
    assert.deepEqual(await gpu.evaluate("window.studio.errors"), []);
    const web = (await gpu.evaluate("window.studio.losses.qkv_depth")) as number[];
    const run = join(root, "node-run-b8");
    tenslora(["train", "--construction", "qkv_depth", "--epochs", "1", "--batch-size", "8", "--out", run, "--threads", "1"]);
    assertLossesMatch(t, "WebGPU", web, trainLosses(run), 2);
  } finally {
    await gpu.close();
  }
});

test("the downloaded adapter evaluates to the page's accuracy in `tenslora eval` and loads in `tenslora infer`", { skip }, async () => {
  const dir = join(root, "downloaded");
  mkdirSync(dir);
  const downloads: Download[] = [];
  page.on("download", (d) => downloads.push(d));
  await page.selectOption("#run-select", "qkv_depth");
  await page.click("#download");
  while (downloads.length < 2) await page.waitForEvent("download", { timeout: 30_000 }).catch(() => assert.fail(`${downloads.length} of 2 files downloaded`));
  for (const d of downloads) await d.saveAs(join(dir, d.suggestedFilename()));
  assert.ok(existsSync(join(dir, "adapter_config.json")) && existsSync(join(dir, "adapter_model.safetensors")));
  const row = (await studio<{ run: string; best: number }[]>("rows")).find((r) => r.run === "qkv_depth")!;
  const evaluated = JSON.parse(tenslora(["eval", "--adapter", dir, "--json", "--threads", "1"]));
  assert.equal(evaluated.accuracy, row.best);
  // one test digit through `infer`: a label of the adapter's head comes back
  const digit = join(root, "digit.safetensors");
  const px = new Float32Array(28 * 28).fill(-1);
  for (let y = 6; y < 22; y++) px[y * 28 + 14] = 1;
  writeFileSync(digit, serializeSafetensors({ pixel_values: { dtype: "F32", shape: [1, 1, 28, 28], data: px } }));
  tenslora(["infer", "--model", join(cache, VERSION), "--adapter", dir, "--inputs", digit, "--output", join(root, "out.safetensors")]);
  assert.deepEqual(readSafetensors(join(root, "out.safetensors")).tensors.get("logits")?.shape, [1, 5], "logits of the adapter's 5-way head");
});

test("a drawn digit is classified with the trained adapter", { skip }, async () => {
  await page.locator("#pad").scrollIntoViewIfNeeded();
  const box = (await page.locator("#pad").boundingBox())!;
  await page.mouse.move(box.x + 80, box.y + 40);
  await page.mouse.down();
  for (const [x, y] of [
    [150, 40],
    [90, 190],
  ])
    await page.mouse.move(box.x + x, box.y + y, { steps: 8 });
  await page.mouse.up();
  await page.click("#classify");
  await page.waitForFunction("window.studio.predictions.length > 0", null, { timeout: 60_000 });
  const [p] = await studio<{ label: string; p: number }[]>("predictions");
  assert.match(p.label, /^digit [5-9]$/);
  assert.ok(p.p > 0.2 && p.p <= 1);
});

test("corrupt weights and adapter files show a message, and the page keeps working", { skip }, async () => {
  await page.setInputFiles("#weights-file", {
    name: "model.safetensors",
    mimeType: "application/octet-stream",
    buffer: Buffer.from("not a safetensors file at all"),
  });
  await page.waitForFunction("window.studio.errors.length >= 1", null, { timeout: 30_000 });
  assert.match((await page.textContent("#message")) ?? "", /model\.safetensors.*(header length|truncated|not safetensors)/s);
  assert.ok(await page.isVisible("#message"));
  const good = readFileSync(join(root, "downloaded", "adapter_model.safetensors"));
  await page.setInputFiles("#adapter-files", [
    { name: "adapter_config.json", mimeType: "application/json", buffer: readFileSync(join(root, "downloaded", "adapter_config.json")) },
    { name: "adapter_model.safetensors", mimeType: "application/octet-stream", buffer: good.subarray(0, good.length - 100) },
  ]);
  await page.waitForFunction("window.studio.errors.length >= 2", null, { timeout: 30_000 });
  assert.match((await page.textContent("#message")) ?? "", /adapter_model\.safetensors/);
  // the backbone and the trained run are untouched: classification still works
  const before = (await studio<unknown[]>("predictions")).length;
  await page.click("#classify");
  await page.waitForFunction(`window.studio.predictions.length > ${before}`, null, { timeout: 60_000 });
  assert.match((await page.textContent("#backbone-status")) ?? "", /backbone\/model\.safetensors/);
  assert.deepEqual(pageErrors, []);
});

test("pretraining in the tab gives the step losses of Node's pretraining, and Stop leaves the backbone as it was", { skip }, async (t) => {
  const backboneBefore = await studio<string>("backbone");
  const errors = (await studio<string[]>("errors")).length;
  await page.fill("#pretrain-epochs", "1");
  await page.click("#pretrain");
  await page.waitForFunction(`window.studio.pretrainLosses.length >= 3 || window.studio.errors.length > ${errors}`, null, { timeout: 120_000, polling: 200 });
  await page.click("#stop");
  await page.waitForFunction("!window.studio.busy", null, { timeout: 60_000 });
  assert.match((await page.textContent("#run-status")) ?? "", /pretraining stopped; the backbone is unchanged/);
  assert.equal(await studio<string>("backbone"), backboneBefore);
  const web = await studio<number[]>("pretrainLosses");
  assert.ok(web.length >= 3, `${web.length} pretraining steps before Stop: ${await studio<string[]>("errors")}`);
  // the same recipe in Node: the seeded random ViT, digits 0–4, PRETRAIN_CONFIG for one epoch
  const node: number[] = [];
  await train({
    model: randomModel(EMBEDDED_CONFIG, 0),
    trainable: "all",
    data: pretrainTask(digits()),
    config: { ...PRETRAIN_CONFIG, epochs: 1, threads: 1 },
    store: memoryRunStore(),
    runtime: nodeRuntime,
    shouldStop: () => node.length >= web.length,
    onEvent: (e) => void (e.type === "step" && node.push(e.loss)),
  });
  assert.equal(node.length, web.length);
  assertLossesMatch(t, "pretraining", web, node, web.length);
  assert.deepEqual(pageErrors, []);
});

test("`tenslora studio` builds the page, serves it on localhost and prints the URL", async () => {
  const child = spawn(process.execPath, [BIN, "studio", "--port", "0", "--no-backbone", "--out", join(root, "cli-site")], { env: cliEnv(cache) });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out);
      });
      child.on("exit", (code) => reject(new Error(`tenslora studio exited with ${code} before printing a URL`)));
    });
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(line)?.[0] ?? assert.fail(`no URL in "${line}"`);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /TensLoRA studio/);
    assert.equal((await fetch(`${url}backbone/model.safetensors`)).status, 404, "--no-backbone leaves the weights out");
    assert.equal((await fetch(`${url}worker.js`)).headers.get("content-type"), "text/javascript");
  } finally {
    child.kill();
  }
});

test("the library's browser build bundles without Node modules, and the check names each module that imports one", async () => {
  await bundleForBrowser({ tenslora: "src/browser.ts" }, join(root, "bundle"));
  const entry = join(root, "leaky.ts");
  writeFileSync(entry, `import { runFolderStore } from "${join(process.cwd(), "src/train/run-folder-store.ts")}";\nconsole.log(runFolderStore);\n`);
  await assert.rejects(bundleForBrowser({ leaky: entry }, join(root, "leaky")), /imports Node modules: .*run-folder-store\.ts → node:fs/);
});
