/**
 * `tenslora compare`: the paper's experiment as one command. With no --model it runs the embedded
 * MNIST benchmark (the README's main job); finished runs in --out are reused.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { ConfigError, DEFAULT_METHODS, compare, compareOptions, prepareData } from "../../src/index.ts";
import { addRunOptions, resolveRunConfig } from "../options.ts";
import { reporter } from "../progress.ts";
import { addQueueSubmitOptions } from "../queue-options.ts";

const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);

export function register(program: Command): void {
  const cmd = program
    .command("compare")
    .description("train every construction (and the linear probe and full fine-tuning) at one parameter budget over several seeds; write a table and a plot")
    .option("--constructions <list>", `methods to compare (default: ${DEFAULT_METHODS.join(",")})`)
    .option("--seeds <list>", "seeds (default 0,1,2)", "0,1,2")
    .option("--full-lr <lr>", "learning rate for full fine-tuning (default: lr / 5)")
    .option("--out <dir>", "comparison folder (finished runs in it are reused)", "runs/compare")
    .option("--json", "machine-readable progress");
  addQueueSubmitOptions(cmd);
  addRunOptions(cmd).action(async (opts: Record<string, unknown>) => {
    const cfg = resolveRunConfig(opts);
    const rep = reporter(Boolean(opts.json));
    const seeds = list(String(opts.seeds)).map(Number);
    if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new ConfigError(`--seeds takes non-negative integers separated by commas, got "${opts.seeds}"`);
    const methods = opts.constructions ? list(String(opts.constructions)) : DEFAULT_METHODS;
    const fullLr = opts.fullLr !== undefined ? Number(opts.fullLr) : cfg.lr / 5;
    if (!(fullLr > 0)) throw new ConfigError(`--full-lr must be a positive number, got ${opts.fullLr}`);
    if (typeof opts.queue === "string") return (await import("../queue.ts")).submitCompare(opts.queue, cfg, { methods, seeds, fullLr }, opts);
    const prepared = await prepareData(cfg, (s) => rep.message(`warning: ${s}`));
    const out = String(opts.out);
    const t0 = Date.now();
    await compare({
      ...(await compareOptions(cfg, prepared, { methods, seeds, fullLr, outDir: out })),
      onEvent: (m, s, e) => rep.event(e, `${m}/seed${s}`),
      log: (s) => rep.message(s),
    });
    rep.stop();
    const table = readFileSync(join(out, "results.md"), "utf8");
    const about =
      (await prepared.loadModel(seeds[0])).family.task === "causal-lm"
        ? "Embedded benchmark: byte-level language modelling of held-out Brown fiction genres (k, l, m, n, p, r; 192 blocks of 64 bytes) by a decoder pretrained here on the non-fiction genres; held-out perplexity per byte.\n\n"
        : "Embedded benchmark: few-shot MNIST digits 5–9 on a ViT pretrained here on digits 0–4.\n\n";
    if (opts.json) console.log(JSON.stringify({ type: "results", ...JSON.parse(readFileSync(join(out, "results.json"), "utf8")), seconds: (Date.now() - t0) / 1000 }));
    else console.log(`\n${prepared.embedded ? about : ""}${table}\nWritten: ${out}/results.json, ${out}/results.md, ${out}/metric-vs-params.svg/.png (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  });
}
