/** A finished sweep's table: the runs' summaries from Redis through the comparison's own writer. */
import type { Arm } from "../experiments/arms.ts";
import { type CompareResult, writeResults } from "../experiments/compare.ts";
import { QueueError, type SweepStore } from "./queue.ts";
import { sweepStatus } from "./status.ts";

/** A grid's rows are its labels ("lora lr=0.01"): arms of the label's construction, every other setting at the default. */
const gridArm = (label: string): Arm => ({
  name: label,
  method: label.split(" ")[0] as Arm["method"],
  factorization: "tucker",
  headLayout: "head_major",
  coreLrScale: 1,
  ranks: "solver",
});

/** Collect a sweep's finished runs into a comparison result and write its table and plots. */
export async function sweepResults(store: SweepStore, outDir: string, name?: string): Promise<{ name: string; result: CompareResult }> {
  const st = await sweepStatus(store, name);
  const open = st.runs.filter((r) => r.state !== "done");
  if (open.length) {
    const failed = open.filter((r) => r.state === "failed");
    const first = failed[0] ? `; first failure: ${failed[0].label} seed ${failed[0].seed}: ${failed[0].error}` : "";
    throw new QueueError(
      `sweep ${st.record.name}: ${open.length} of ${st.runs.length} runs are not done (${failed.length} failed)${first}; see \`tenslora sweep status\``,
    );
  }
  const results = st.runs.map((r) => r.result!);
  if (results.some((r) => !r.summary)) throw new QueueError(`sweep ${st.record.name} was a dry run: its runs trained nothing, so there is no table`);
  const runs = st.runs.map((r, i) => ({ ...results[i].summary!, arm: r.label }));
  // budgets in the order the runs were submitted (arm-major, so the first arm's order)
  const budgets = new Map<string, number>();
  for (const r of results) if (r.budget) budgets.set(r.budget.label, r.budget.params);
  const arms = st.record.arms ?? st.record.labels.map(gridArm);
  const result = await writeResults(
    outDir,
    {
      metric: results[0].metric,
      arms,
      budgets: st.record.arms ? [...budgets].map(([label, params]) => ({ label, params })) : [{ label: "", params: 0 }],
      seeds: [...new Set(st.runs.map((r) => r.seed))],
      valFraction: st.record.valFraction,
      backbone: results[0].backboneParams,
    },
    runs,
  );
  return { name: st.record.name, result };
}
