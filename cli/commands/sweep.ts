/**
 * `tenslora sweep`: a grid over any `train` setting, queued on Redis for `tenslora worker`s;
 * `sweep status` follows it, `sweep results` writes its table as `compare` does.
 */
import type { Command } from "commander";
import { ConfigError, loadConfigFile } from "../../src/index.ts";
import { parseSweepFile, sweepJobs, sweepName } from "../../src/sweep/jobs.ts";
import { resolveRunConfig } from "../options.ts";
import { addQueueSubmitOptions } from "../queue-options.ts";

// BullMQ loads only when a sweep command runs
const queue = () => import("../queue.ts");

export function register(program: Command): void {
  const sweep = program
    .command("sweep")
    .description("queue a grid of training runs on Redis (see `sweep status`, `sweep results` and `tenslora worker`)")
    .option("--config <file>", 'sweep file: {"name"?, "base": {train settings}, "grid": {"setting": [values, ...]}, "dryRun"?}')
    .option("--out <dir>", "with --wait: where the results go (default runs/sweep)")
    .option("--json", "machine-readable output");
  addQueueSubmitOptions(sweep).action(async (opts: Record<string, unknown>) => {
    if (typeof opts.config !== "string") throw new ConfigError("sweep needs --config FILE (a sweep file) and --queue URL");
    if (typeof opts.queue !== "string") throw new ConfigError("sweep needs --queue redis://HOST:PORT/DB");
    opts.out ??= "runs/sweep";
    const file = parseSweepFile(loadConfigFile(opts.config), opts.config);
    if (opts.dryRun) file.dryRun = true;
    const { jobs, runs, labels, base } = sweepJobs(file, (values) => resolveRunConfig(values));
    const name = typeof opts.name === "string" ? opts.name : (file.name ?? sweepName("sweep", runs));
    await (await queue()).submit(
      opts.queue,
      { name, kind: "train", metric: base.metric, isoLoraRank: base.isoLora, labels, valFraction: base.valFraction, runs },
      jobs,
      opts,
    );
  });
  sweep
    .command("status <url>")
    .description("where each run of a sweep stands: queued, running (where, progress, loss), done, failed (with its error); ETA")
    .option("--name <name>", "the sweep (default: the last submitted)")
    .option("--watch", "redraw every second until every run has ended")
    .option("--all", "list every run, also of large sweeps")
    .option("--json", "machine-readable output")
    // the parent's options (--name, --json, --out) are parsed wherever they stand, hence optsWithGlobals
    .action(async (url: string, _opts: unknown, cmd: Command) => (await queue()).showStatus(url, cmd.optsWithGlobals()));
  sweep
    .command("results <url>")
    .description("write a finished sweep's results.json, results.md and plot, as `compare` does")
    .option("--name <name>", "the sweep (default: the last submitted)")
    .option("--out <dir>", "output folder")
    .option("--json", "machine-readable output")
    .action(async (url: string, _opts: unknown, cmd: Command) => (await queue()).writeSweepResults(url, cmd.optsWithGlobals()));
}
