/** The flags that send runs to a Redis queue (`compare`, `sweep`); the queue code itself loads only when used. */
import type { Command } from "commander";

export function addQueueSubmitOptions(cmd: Command): Command {
  return cmd
    .option("--queue <url>", "enqueue the runs on this Redis (redis://HOST:PORT/DB) for `tenslora worker`s instead of running them here")
    .option("--name <name>", "sweep name for `sweep status` / `sweep results` (default: derived from the runs)")
    .option("--wait", "with --queue: wait until every run has ended, then write the results to --out")
    .option("--retry-failed", "with --queue: run failed runs of this sweep again")
    .option("--dry-run", "with --queue: runs only resolve and check their settings (no training)");
}
