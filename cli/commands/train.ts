/** `tenslora train`: one run, with progress, checkpoints, resume and a clean stop on SIGINT/SIGTERM. */
import { join } from "node:path";
import type { Command } from "commander";
import { isFractionMetric, loadConfigFile, runTraining, nodeRuntime } from "../../src/index.ts";
import { addRunOptions, resolveRunConfig } from "../options.ts";
import { reporter } from "../progress.ts";

export function register(program: Command): void {
  const cmd = program
    .command("train")
    .description("train an adapter (or a head, or the whole model) and save it with metrics and plots")
    .option("--out <dir>", "run folder", "runs/train")
    .option("--resume <dir>", "continue the run saved in this folder (same settings)")
    .option("--overwrite", "replace what --out already holds (a new run refuses a non-empty folder otherwise)")
    .option("--json", "machine-readable progress: one JSON object per line");
  addRunOptions(cmd).action(async (opts: Record<string, unknown>) => {
    const resume = typeof opts.resume === "string" ? opts.resume : undefined;
    // a resumed run takes its saved settings; flags given now override them (and must agree)
    const cfg = resume ? resolveRunConfig({ ...opts, config: undefined }, loadConfigFile(join(resume, "config.json"))) : resolveRunConfig(opts);
    const out = resume ?? String(opts.out);
    const rep = reporter(Boolean(opts.json));
    let stop = false;
    let training = false;
    const onSignal = (sig: string) => {
      // before the first step there is nothing to save: loading data or building graphs just ends
      if (!training) {
        rep.message(`${sig}: stopped before training started`);
        process.exit(130);
      }
      stop = true;
      rep.message(`${sig}: saving a checkpoint after the current step …`);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      const result = await runTraining(
        cfg,
        out,
        {
          runtime: nodeRuntime,
          onEvent: (e) => {
            training = true;
            rep.event(e);
          },
          shouldStop: () => stop,
          warn: (s) => rep.message(`warning: ${s}`),
          log: (s) => rep.message(s),
        },
        resume ? "resume" : opts.overwrite ? "overwrite" : "new",
      );
      rep.stop();
      if (result.interrupted) {
        rep.message(`stopped at step ${result.steps}; resume with: tenslora train --resume ${out}`);
        process.exitCode = 130;
        return;
      }
      const show = (v: number) => (isFractionMetric(result.metric) ? (100 * v).toFixed(2) : v.toFixed(4));
      const best = !result.best
        ? "n/a"
        : result.validationSize > 0
          ? `validation ${result.metric} ${show(result.best.value)} at step ${result.best.step} (test ${show(result.best.test)})`
          : `test ${result.metric} ${show(result.best.value)} at step ${result.best.step}`;
      rep.message(`done: ${result.steps} steps, best ${best}; adapters in ${out}/best and ${out}/last, summary in ${out}/summary.json`);
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  });
}
