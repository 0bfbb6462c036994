/**
 * Submitting runs to a Redis queue (`compare --queue`, `sweep`), and `--wait`: follow the sweep
 * until every run has ended, then write its table as the in-process `compare` does.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ArmGrid, Budget, RunConfig } from "../src/index.ts";
import {
  QueueError,
  type RunJob,
  type SweepRecord,
  compareJobs,
  openStore,
  statusTable,
  submitSweep,
  sweepName,
  sweepResults,
  sweepStatus,
} from "../src/sweep/index.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function submit(url: string, record: Omit<SweepRecord, "submittedAt">, jobs: RunJob[], opts: Record<string, unknown>): Promise<void> {
  const store = await openStore(url);
  try {
    const r = await submitSweep(store, record, jobs, { retryFailed: Boolean(opts.retryFailed) });
    const line = `sweep ${r.name}: ${jobs.length} runs: ${r.added} queued now, ${r.pending} already queued or running, ${r.finished} already done${r.retried ? `, ${r.retried} failed runs queued again` : ""}${r.failed ? `, ${r.failed} failed (--retry-failed runs them again)` : ""}`;
    if (opts.json) console.log(JSON.stringify({ type: "submitted", ...r, runs: jobs.length }));
    else console.error(line);
    if (!opts.wait) {
      if (!opts.json)
        console.error(
          `follow it with: tenslora sweep status ${url} --name ${r.name}\ncollect it with: tenslora sweep results ${url} --name ${r.name} --out DIR`,
        );
      return;
    }
    let shown = "";
    for (;;) {
      const st = await sweepStatus(store, r.name);
      const c = st.counts;
      const now = `${c.done}/${st.runs.length} done, ${c.running} running, ${c.failed} failed`;
      if (now !== shown && !opts.json) console.error(now);
      shown = now;
      if (!c.queued && !c.running && !c.retrying) break;
      await sleep(1000);
    }
    if (record.runs.length && jobs[0].dryRun) return;
    const out = String(opts.out);
    await sweepResults(store, out, r.name);
    if (opts.json) console.log(JSON.stringify({ type: "results", ...JSON.parse(readFileSync(join(out, "results.json"), "utf8")) }));
    else console.log(`\n${readFileSync(join(out, "results.md"), "utf8")}\nWritten: ${out}/results.json, ${out}/results.md, ${out}/metric-vs-params.svg/.png`);
  } finally {
    await store.close();
  }
}

/** `compare --queue`: one job per arm × budget × seed, each the in-process comparison's own run. */
export function submitCompare(
  url: string,
  cfg: RunConfig,
  s: ArmGrid & { budgets: Budget[]; seeds: number[]; fullLr: number },
  opts: Record<string, unknown>,
): Promise<void> {
  const { jobs, runs, arms } = compareJobs(cfg, { ...s, dryRun: Boolean(opts.dryRun) });
  const name = typeof opts.name === "string" ? opts.name : sweepName("compare", runs);
  return submit(
    url,
    { name, kind: "compare", metric: cfg.metric, isoLoraRank: cfg.isoLora, labels: arms.map((a) => a.name), arms, valFraction: cfg.valFraction, runs },
    jobs,
    opts,
  );
}

/** `sweep status`: once, or redrawn every second with --watch until nothing is left to run. */
export async function showStatus(url: string, opts: Record<string, unknown>): Promise<void> {
  const store = await openStore(url);
  try {
    for (;;) {
      const st = await sweepStatus(store, opts.name as string | undefined);
      if (opts.json)
        console.log(
          JSON.stringify({
            type: "status",
            name: st.record.name,
            counts: st.counts,
            workers: st.workers,
            etaSec: st.etaSec,
            runs: st.runs.map(({ result: _r, ...r }) => r),
          }),
        );
      else process.stdout.write(`${opts.watch && process.stdout.isTTY ? "\x1b[2J\x1b[H" : ""}${statusTable(st, Boolean(opts.all))}`);
      const c = st.counts;
      if (!opts.watch || (!c.queued && !c.running && !c.retrying)) return;
      await sleep(1000);
    }
  } finally {
    await store.close();
  }
}

export async function writeSweepResults(url: string, opts: Record<string, unknown>): Promise<void> {
  if (typeof opts.out !== "string") throw new QueueError("sweep results needs --out DIR");
  const store = await openStore(url);
  try {
    const { name } = await sweepResults(store, opts.out, opts.name as string | undefined);
    if (opts.json) console.log(JSON.stringify({ type: "results", name, ...JSON.parse(readFileSync(join(opts.out, "results.json"), "utf8")) }));
    else
      console.log(
        `${readFileSync(join(opts.out, "results.md"), "utf8")}\nWritten: ${opts.out}/results.json, ${opts.out}/results.md, ${opts.out}/metric-vs-params.svg/.png (sweep ${name})`,
      );
  } finally {
    await store.close();
  }
}
