/**
 * The screenshot of the studio in docs/studio.md after a comparison: builds and serves the page with the
 * cached pretrained backbone, trains the default constructions on WebAssembly in Chromium for 2
 * epochs, classifies a drawn digit and saves docs/studio.png. Run: npx tsx scripts/studio-screenshot.ts
 */
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";
import { ensureEmbeddedModel } from "../src/experiments/embedded.ts";
import { buildStudio } from "../studio/build.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../studio/chromium.ts";
import { serveStudio } from "../studio/serve.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const site = await buildStudio(join(mkdtempSync(join(tmpdir(), "tenslora-shot-")), "site"), { backbone: await ensureEmbeddedModel({ runtime: nodeRuntime }) });
const { server, url } = await serveStudio(site, 0);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(`${url}?device=wasm&threads=1`);
  await page.waitForFunction("window.studio.backbone", null, { timeout: 120_000 });
  await page.fill("#epochs", "2");
  await page.click("#train");
  await page.waitForFunction("!window.studio.busy && window.studio.rows.length >= 4", null, { timeout: 1_800_000, polling: 1000 });
  await page.locator("#pad").scrollIntoViewIfNeeded();
  const box = (await page.locator("#pad").boundingBox())!;
  // a 7: the top bar, then the diagonal
  await page.mouse.move(box.x + 50, box.y + 45);
  await page.mouse.down();
  for (const [x, y] of [
    [170, 45],
    [95, 190],
  ])
    await page.mouse.move(box.x + x, box.y + y, { steps: 10 });
  await page.mouse.up();
  await page.selectOption("#run-select", "qkv_depth");
  await page.click("#classify");
  await page.waitForFunction("window.studio.predictions.length > 0 || window.studio.errors.length > 0", null, { timeout: 300_000 });
  const errors = await page.evaluate("window.studio.errors");
  if ((errors as string[]).length) console.error("page errors:", errors);
  await page.screenshot({ path: "docs/studio.png", fullPage: true });
  console.log("docs/studio.png", JSON.stringify(await page.evaluate("window.studio.rows")));
} finally {
  await browser.close();
  server.close();
}
