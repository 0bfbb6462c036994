/**
 * Image and sequence classification: logits [B, classes] against one label per example, argmax
 * predictions scored with scikit-learn's metrics (metrics.ts).
 */
import { ConfigError, DataError } from "../errors.ts";
import { crossEntropy } from "../ir/functional.ts";
import type { HostTensor } from "../tensor/host.ts";
import type { CompiledGraph } from "../runtime/types.ts";
import type { Task } from "../models/types.ts";
import { type MetricsSummary, percent, summarize } from "./metrics.ts";
import type { EvalSplit, SplitName, TaskData } from "./task-data.ts";
import { type DataKind, type EvalReport, type TaskSpec, assertFiniteLogits } from "./types.ts";

/** The metrics a classification run can report and select by. */
export const CLASSIFICATION_METRICS = ["accuracy", "mcc", "macro_f1", "binary_f1"] as const;
/** A metric a run can select its best step by. */
export type MetricName = (typeof CLASSIFICATION_METRICS)[number];

/** A classification metric by name from a metrics summary; throws a ConfigError naming the valid metrics. */
export function metricValue(m: MetricsSummary, name: string): number {
  const v = { accuracy: m.accuracy, mcc: m.mcc, macro_f1: m.macroF1, binary_f1: m.binaryF1 ?? Number.NaN }[name];
  if (v === undefined) throw new ConfigError(`unknown metric "${name}"; valid: ${CLASSIFICATION_METRICS.join(", ")}`);
  if (Number.isNaN(v)) throw new ConfigError(`metric "${name}" is undefined for ${m.confusionMatrix.length} classes; use accuracy, mcc or macro_f1`);
  return v;
}

const range = (a: number, b: number) => Int32Array.from({ length: b - a }, (_, i) => a + i);

/** Predictions of the examples scored, with their labels; images that no longer decode are left out and listed. */
export interface Predictions {
  preds: Int32Array;
  labels: Int32Array;
  skipped: string[];
}

/** Argmax predictions on a split, batch by batch through the eval graph (the next batch is prepared while one runs). */
export async function predict(
  data: TaskData,
  split: SplitName,
  graph: CompiledGraph,
  B: number,
  feedsOf: (inputs: Record<string, HostTensor>) => Record<string, HostTensor>,
): Promise<Predictions> {
  const n = data.size(split);
  const preds = new Int32Array(n);
  const scored = new Uint8Array(n).fill(1);
  const skipped: string[] = [];
  let next = data.batch(split, range(0, Math.min(B, n)), B);
  for (let start = 0; start < n; start += B) {
    const batch = await next;
    if (start + B < n) next = data.batch(split, range(start + B, Math.min(start + 2 * B, n)), B);
    const out = await graph.run(feedsOf(batch.inputs));
    const logits = out.logits.data as Float32Array;
    const C = out.logits.shape[1];
    assertFiniteLogits(logits.subarray(0, batch.valid * C), split);
    for (const s of batch.skipped ?? []) {
      scored[start + s.row] = 0;
      skipped.push(s.path);
    }
    for (let r = 0; r < batch.valid; r++) {
      if (!scored[start + r]) continue;
      let best = 0;
      for (let c = 1; c < C; c++) if (logits[r * C + c] > logits[r * C + best]) best = c;
      preds[start + r] = best;
    }
  }
  if (skipped.length === n) throw new DataError(`every image of the ${split} split failed to decode (first: ${skipped[0]}); restore the data`);
  const labels = data.labels!(split);
  const keep = (a: Int32Array) => (skipped.length ? a.filter((_, i) => scored[i]) : a);
  return { preds: keep(preds), labels: keep(labels), skipped };
}

/** A classifier's metrics on a split, as `eval` reports them. */
export interface EvalResult extends MetricsSummary {
  split: EvalSplit;
  classNames: string[];
}

function evalTable(r: EvalResult): string {
  const lines = [
    `${r.split} split: ${r.numSamples} examples, ${r.classNames.length} classes`,
    `accuracy   ${percent(r.accuracy)}%`,
    `macro F1   ${percent(r.macroF1)}`,
    ...(r.binaryF1 !== null ? [`binary F1  ${percent(r.binaryF1)}`] : []),
    `MCC        ${r.mcc.toFixed(4)}`,
    "",
    "per class   accuracy",
    ...r.classNames.map((c, i) => `  ${c.padEnd(Math.max(10, ...r.classNames.map((x) => x.length)))} ${percent(r.perClassAccuracy[i])}`),
    "",
    "confusion matrix (rows: true class, columns: predicted)",
  ];
  const w = Math.max(4, ...r.confusionMatrix.flat().map((v) => String(v).length + 1));
  lines.push(`  ${"".padEnd(4)}${r.classNames.map((_, j) => String(j).padStart(w)).join("")}`);
  r.confusionMatrix.forEach((row, i) => lines.push(`  ${String(i).padEnd(4)}${row.map((v) => String(v).padStart(w)).join("")}`));
  return lines.join("\n");
}

const evalReport: EvalReport<EvalResult> = {
  batchSize: 64,
  // images that no longer decode are warned about by the caller, not reported
  result: ({ metrics: { skippedImages: _, ...m } }, split, classNames) => ({ ...(m as unknown as MetricsSummary), split, classNames }),
  table: evalTable,
};

function classification(name: Task, dataKind: DataKind & ("image" | "text"), defaultWarmup: number, peftTaskType?: string): TaskSpec {
  return {
    name,
    peftTaskType,
    input: dataKind,
    dataKind,
    evalReport,
    generates: false,
    defaultWarmup,
    trainsHeadWithAdapter: true,
    labelShape: (batch) => [batch],
    loss: crossEntropy,
    metrics: CLASSIFICATION_METRICS,
    higherIsBetter: () => true,
    async evaluate(data, split, graph, B, feedsOf, metric) {
      const { preds, labels, skipped } = await predict(data, split, graph, B, feedsOf);
      const metrics = summarize(preds, labels, data.classNames!.length);
      const left = skipped.length ? `, ${skipped.length} undecodable image(s) left out (${skipped.slice(0, 3).join(", ")})` : "";
      return {
        metrics: { ...metrics, ...(skipped.length ? { skippedImages: skipped } : {}) },
        value: metricValue(metrics, metric),
        summary: `accuracy ${(100 * metrics.accuracy).toFixed(2)}%, macro F1 ${(100 * metrics.macroF1).toFixed(2)}, MCC ${metrics.mcc.toFixed(4)}${left}`,
        log: {
          accuracy: metrics.accuracy,
          macro_f1: metrics.macroF1,
          mcc: metrics.mcc,
          binary_f1: metrics.binaryF1,
          ...(skipped.length ? { skipped_images: skipped.length } : {}),
        },
      };
    },
  };
}

export const imageClassification = classification("image-classification", "image", 0);
// BERT-style fine-tuning recipes warm up over the first 10 % of the steps
export const textClassification = classification("text-classification", "text", 0.1, "SEQ_CLS");
