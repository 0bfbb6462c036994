/** `tenslora studio`: the fine-tuning page, built into a folder and served on localhost. */
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { ConfigError, cacheDir, ensureEmbeddedModel, nodeRuntime } from "../../src/index.ts";
import { buildStudio } from "../../studio/build.ts";
import { serveStudio } from "../../studio/serve.ts";

export function register(program: Command): void {
  program
    .command("studio")
    .description("fine-tune and compare adapters in a browser tab (WebGPU, else WebAssembly): build the page and serve it on localhost")
    .option("--port <n>", "port (0: any free one)", "8080")
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--out <dir>", "folder for the page's static files (default: <cache>/studio)")
    .option("--no-backbone", "leave the pretrained weights out (the page pretrains in the tab)")
    .option("--build-only", "write the static files and exit (host the folder anywhere)")
    .action(async (opts: { port: string; host: string; out?: string; backbone: boolean; buildOnly?: boolean }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port must be an integer in 0..65535, got "${opts.port}"`);
      const out = resolve(opts.out ?? join(cacheDir(), "studio"));
      const backbone = opts.backbone ? await ensureEmbeddedModel({ runtime: nodeRuntime }) : undefined;
      await buildStudio(out, { backbone });
      if (opts.buildOnly) return console.log(out);
      const { url } = await serveStudio(out, port, opts.host);
      console.log(`TensLoRA studio: ${url} (decoders on a quantized base: ${url}lm.html; files in ${out}; Ctrl-C stops)`);
    });
}
