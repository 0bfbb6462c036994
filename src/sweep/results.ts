/** A finished sweep's table: the runs' summaries from Redis through the comparison's own writer. */
import { type CompareRow, writeResults } from "../experiments/compare.ts";
import { QueueError, type SweepStore } from "./queue.ts";
import { sweepStatus } from "./status.ts";

export async function sweepResults(store: SweepStore, outDir: string, name?: string): Promise<{ name: string; rows: CompareRow[] }> {
  const st = await sweepStatus(store, name);
  const open = st.runs.filter((r) => r.state !== "done");
  if (open.length) {
    const failed = open.filter((r) => r.state === "failed");
    const first = failed[0] ? `; first failure: ${failed[0].label} seed ${failed[0].seed}: ${failed[0].error}` : "";
    throw new QueueError(`sweep ${st.record.name}: ${open.length} of ${st.runs.length} runs are not done (${failed.length} failed)${first}; see \`tenslora sweep status\``);
  }
  const results = st.runs.map((r) => r.result!);
  if (results.some((r) => !r.summary)) throw new QueueError(`sweep ${st.record.name} was a dry run: its runs trained nothing, so there is no table`);
  // a grid's rows are its labels; a comparison's labels are its methods already
  const summaries = st.runs.map((r, i) => ({ ...results[i].summary!, method: r.label }));
  const rows = await writeResults(outDir, { metric: st.record.metric, isoLoraRank: st.record.isoLoraRank, backbone: results[0].backboneParams, methods: st.record.labels }, summaries);
  return { name: st.record.name, rows };
}
