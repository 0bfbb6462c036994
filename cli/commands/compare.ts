/**
 * `tenslora compare`: the paper's experiment as one command. With no --model it runs the embedded
 * MNIST benchmark (the README's main job); finished runs in --out are reused.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import {
  ConfigError,
  DEFAULT_METHODS,
  FACTORIZATIONS,
  type Factorization,
  type HeadLayout,
  type RankMode,
  checkCompareFolder,
  checkRunOptions,
  compare,
  compareOptions,
  parseBudgets,
  parseLrs,
  parseSeeds,
  prepareData,
  recordCompareFolder,
  claimTasks,
  claimsMarkdown,
  runClaims,
  nodeRuntime,
  taskNamed,
  writeFileAtomic,
} from "../../src/index.ts";
import { addRunOptions, resolveRunConfig } from "../options.ts";
import { type Reporter, compareReporter, reporter } from "../progress.ts";
import { addQueueSubmitOptions } from "../queue-options.ts";

const list = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

export function register(program: Command): void {
  const cmd = program
    .command("compare")
    .description(
      "train every construction (and the linear probe and full fine-tuning) at one or more parameter budgets over several seeds; write a table with 95 % intervals and paired tests, and a plot",
    )
    .option("--constructions <list>", `methods to compare (default: ${DEFAULT_METHODS.join(",")})`)
    .option("--budgets <ranks>", "budgets as LoRA ranks (iso-LoRA), e.g. 1,2,4,8,16 (default: --iso-lora)")
    .option("--budget-params <counts>", "budgets as parameter counts, e.g. 2000,12000 (instead of --budgets)")
    .option("--factorizations <list>", `any of ${Object.keys(FACTORIZATIONS).join(", ")}, each an arm of every tensor construction (default: --factorization)`)
    .option("--head-layouts <list>", "head_major and/or interleaved, each an arm of the att constructions (default: --head-layout)")
    .option("--lrs <list>", "learning rates, each an arm (e.g. 3e-3,1e-3,1e-2); the first is the default arm's and full fine-tuning's base (instead of --lr)")
    .option("--core-lr-scales <list>", "core learning-rate multipliers, each an arm (default: --core-lr-scale)")
    .option("--rank-modes <list>", "solver (ranks from the budget solver) and/or auto (from a warm-up's spectrum), each an arm")
    .option("--seeds <list>", "seeds: a list and ranges, e.g. 0,1,2 or 0-9 (default 0,1,2)", "0,1,2")
    .option("--claims", "the paper's claims on every embedded task (MNIST ViT, sentiment, spam, causal LM) at LoRA r=4 and r=8, seed by seed; writes claims.md")
    .option("--claims-tasks <list>", "with --claims: only these of vision, sentiment, spam, causal-lm (default: all)")
    .option("--claims-report", "with --claims: write the table from the finished runs only, training nothing")
    .option("--claims-doc <file>", "with --claims: also write the claims table to this file (e.g. docs/claims.md)")
    .option("--full-lr <lr>", "learning rate for full fine-tuning (default: lr / 5)")
    .option(
      "--out <dir>",
      "comparison folder; finished runs in it are reused (default runs/compare, with --task causal-lm runs/compare-lm, with --claims runs/claims)",
    )
    .option("--json", "machine-readable progress");
  addQueueSubmitOptions(cmd);
  addRunOptions(cmd).action(async (opts: Record<string, unknown>) => {
    // `--ranks auto` is the rank-mode shorthand; any other --ranks is a train-only setting
    const autoRanks = opts.ranks === "auto";
    if (opts.ranks !== undefined && !autoRanks)
      throw new ConfigError(`compare takes --ranks auto (ranks from a warm-up's spectrum) or none (the budget solver), got "${opts.ranks}"`);
    if (opts.lrs !== undefined && opts.lr !== undefined)
      throw new ConfigError("give --lr (one rate) or --lrs (a rate per arm, the first the default), not both");
    const lrs = opts.lrs !== undefined ? parseLrs(String(opts.lrs)) : undefined;
    const cfg = resolveRunConfig({ ...opts, ranks: undefined, ...(lrs ? { lr: lrs[0] } : {}) });
    checkRunOptions(cfg);
    const rep = reporter(Boolean(opts.json));
    const seeds = parseSeeds(String(opts.seeds));
    if (opts.claims) return runClaimsCommand(opts, seeds, cfg.threads);
    if (opts.budgets !== undefined && opts.budgetParams !== undefined)
      throw new ConfigError("give --budgets (LoRA ranks) or --budget-params (counts), not both");
    const budgets =
      opts.budgetParams !== undefined ? parseBudgets(String(opts.budgetParams), "params") : parseBudgets(String(opts.budgets ?? cfg.isoLora), "iso-lora");
    const methods = opts.constructions ? list(String(opts.constructions)) : DEFAULT_METHODS;
    const grid = {
      methods,
      factorizations: (opts.factorizations ? list(String(opts.factorizations)) : [cfg.factorization]) as Factorization[],
      headLayouts: (opts.headLayouts ? list(String(opts.headLayouts)) : [cfg.headLayout]) as HeadLayout[],
      coreLrScales: opts.coreLrScales ? list(String(opts.coreLrScales)).map(Number) : [cfg.coreLrScale],
      rankModes: (opts.rankModes ? list(String(opts.rankModes)) : [autoRanks ? "auto" : "solver"]) as RankMode[],
      ...(lrs ? { lrs } : {}),
    };
    const fullLr = opts.fullLr !== undefined ? Number(opts.fullLr) : cfg.lr / 5;
    if (!(fullLr > 0)) throw new ConfigError(`--full-lr must be a positive number, got ${opts.fullLr}`);
    // benchmarks of some tasks default to folders of their own, so any may run first
    const out = typeof opts.out === "string" ? opts.out : (taskNamed(cfg.task)?.compareFolder ?? "runs/compare");
    if (typeof opts.queue === "string")
      return (await import("../queue.ts")).submitCompare(opts.queue, cfg, { ...grid, budgets, seeds, fullLr }, { ...opts, out });
    // a folder of another benchmark fails now, before the model is pretrained or the data read
    checkCompareFolder(out, cfg);
    const prepared = await prepareData(
      cfg,
      nodeRuntime,
      (s) => rep.message(`warning: ${s}`),
      (s) => rep.message(s),
    );
    recordCompareFolder(out, cfg, { onlyIfNew: true });
    const t0 = Date.now();
    // one bar over the runs once they are planned; each run trains quietly under it
    let runs: (Reporter & { runDone(line: string): void }) | undefined;
    await compare({
      ...(await compareOptions(cfg, prepared, { ...grid, budgets, seeds, fullLr, outDir: out, runtime: nodeRuntime })),
      onPlan: (n) => (runs = compareReporter(Boolean(opts.json), n)),
      onEvent: (run, e) => (runs ?? rep).event(e, run),
      onRunDone: (line) => runs?.runDone(line),
      log: (s) => (runs ?? rep).message(s),
    });
    runs?.stop();
    rep.stop();
    // its finished runs matched these settings: a folder from before the record gets one too
    recordCompareFolder(out, cfg);
    const seconds = (Date.now() - t0) / 1000;
    const table = readFileSync(join(out, "results.md"), "utf8");
    if (opts.json) console.log(JSON.stringify({ type: "results", ...JSON.parse(readFileSync(join(out, "results.json"), "utf8")), seconds }));
    else
      console.log(
        `\n${prepared.about ? `${prepared.about}\n\n` : ""}${table}\nWritten: ${out}/results.json, ${out}/results.md, ${out}/metric-vs-params.svg/.png (${seconds.toFixed(0)} s)`,
      );
  });
}

/** `compare --claims`: every embedded task, seed by seed, the claims table rewritten after each seed. */
async function runClaimsCommand(opts: Record<string, unknown>, seeds: number[], threads: number): Promise<void> {
  const out = typeof opts.out === "string" ? opts.out : "runs/claims";
  const rep = reporter(Boolean(opts.json));
  const only = typeof opts.claimsTasks === "string" ? ` --claims-tasks ${opts.claimsTasks}` : "";
  const report = opts.claimsReport ? " --claims-report" : "";
  const command = `tenslora compare --claims${report} --seeds ${String(opts.seeds)}${only}${out === "runs/claims" ? "" : ` --out ${out}`}`;
  const t = await runClaims({
    seeds,
    runtime: nodeRuntime,
    reportOnly: Boolean(opts.claimsReport),
    tasks: claimTasks(typeof opts.claimsTasks === "string" ? opts.claimsTasks : ""),
    outDir: out,
    threads: threads || undefined,
    log: (s) => rep.message(s),
    onEvent: (run, e) => rep.event(e, run),
    onTable: (table) => {
      const md = claimsMarkdown(table, command);
      writeFileAtomic(join(out, "claims.md"), md);
      if (typeof opts.claimsDoc === "string") writeFileAtomic(opts.claimsDoc, md);
    },
  });
  rep.stop();
  console.log(`\n${claimsMarkdown(t, command)}\nWritten: ${out}/claims.md, ${out}/claims.json and a comparison folder per task in ${out}`);
}
