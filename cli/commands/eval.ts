/**
 * `tenslora eval`: accuracy, macro/binary F1, MCC, per-class accuracy and the confusion matrix of a
 * trained adapter (or head, or full model) on a split of the data, as a table or as JSON; token
 * classifiers: token accuracy and tag F1; causal LMs: perplexity.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { baseDtypeOf, runConfigBeside } from "../options.ts";
import {
  ConfigError,
  DATA_FORMATS,
  type DataFormat,
  type EvalSplit,
  embeddedTransferData,
  ensureEmbeddedModel,
  evalTable,
  evaluateTaskData,
  evaluateTrained,
  loadTrainedModel,
  nodeRuntime,
} from "../../src/index.ts";

const int = (flag: string, v: unknown, min: number): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${flag} must be an integer ≥ ${min}, got "${v}"`);
  return n;
};

/** The settings of the run beside an adapter saved by `train` (RUN_DIR/best or RUN_DIR/last), if any. */
function runSettings(adapter: string): Record<string, string | number | undefined> {
  const raw = runConfigBeside(adapter);
  if (!("seed" in raw)) return {}; // not a run folder: plain defaults
  const pick = (k: string) => (typeof raw[k] === "string" || typeof raw[k] === "number" ? (raw[k] as string | number) : undefined);
  return Object.fromEntries(
    [
      "seed",
      "data",
      "maxLength",
      "dataFormat",
      "evalData",
      "textColumn",
      "textPairColumn",
      "labelColumn",
      "numLabels",
      "truncation",
      "packing",
      "baseDtype",
    ].map((k) => [k, pick(k) ?? (typeof raw[k] === "boolean" ? String(raw[k]) : undefined)]),
  );
}

export function register(program: Command): void {
  program
    .command("eval")
    .description("metrics of a trained adapter, head or model on the test split of a data set, or all of it (causal LMs: perplexity)")
    .option("--model <dir>", "HuggingFace model folder (without --model and --data: the embedded MNIST benchmark, as `train` runs it)")
    .option("--adapter <dir>", "adapter folder, head folder or full model folder (e.g. RUN_DIR/best); without it, the base model's score")
    .option("--data <path>", "data folder or table file (as for train)")
    .option("--data-format <format>", `${DATA_FORMATS.join(" | ")} (default: detected)`)
    .option("--eval-data <file>", "test table for --data-format table")
    .option("--text-column <name>", "table column holding the text")
    .option("--text-pair-column <name>", "table column holding the second text of a pair")
    .option("--label-column <name>", "table column holding the label")
    .option("--seed <n>", "seed of the train/test split (default: the run's, from RUN_DIR/config.json beside the adapter, else 0)")
    .option(
      "--split <name>",
      "test | train | all: the seeded test split, the training split, or every record of --data (with --eval-data, of both files)",
      "test",
    )
    .option("--max-length <n>", "text: truncate to N tokens (default: the run's, else 512)")
    .option("--batch-size <n>", "batch size", "64")
    .option("--threads <n>", "ONNX Runtime intra-op threads (default: all cores)")
    .option(
      "--base-dtype <dtype>",
      "f32 | f16 | int8 | int4: hold the frozen linear weights of a decoder in float16, or in 8 or 4 bits (default: the run's, else f32)",
    )
    .option("--json", "print the metrics as one JSON object")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      // settings that decide the split and the tokens default to the run's (RUN_DIR/best → RUN_DIR/config.json)
      const adapter = typeof opts.adapter === "string" ? opts.adapter : undefined;
      const run = adapter ? runSettings(adapter) : {};
      const trained = (model: string) => {
        const tm = loadTrainedModel(model, adapter, { baseDtype: baseDtypeOf(opts, run) });
        // a base classifier's head is not trained for these classes: its score would be chance, not a baseline
        if (tm.randomHead)
          throw new ConfigError(
            `${model} has no trained classifier for this data; pass --adapter RUN_DIR/best (the base model's score is meaningful for language models)`,
          );
        return tm;
      };
      if (opts.model === undefined && opts.data === undefined) {
        if (!adapter) throw new ConfigError("eval of the embedded benchmark needs --adapter RUN_DIR/best (its base model classifies other digits)");
        const tm = trained(await ensureEmbeddedModel({ runtime: nodeRuntime }));
        const seed = int("--seed", opts.seed ?? run.seed, 0) ?? 0;
        const opt = {
          runtime: nodeRuntime,
          split: opts.split as EvalSplit,
          batchSize: int("--batch-size", opts.batchSize, 1),
          threads: int("--threads", opts.threads, 1),
        };
        const r = await evaluateTaskData(tm, embeddedTransferData(100, 200, seed), opt);
        return console.log(opts.json ? JSON.stringify({ model: "embedded", adapter: opts.adapter, seed, ...r }) : evalTable(tm, r));
      }
      if (typeof opts.model !== "string") throw new ConfigError(`eval needs --model DIR with --data (or neither, for the embedded MNIST benchmark)`);
      if (typeof opts.data !== "string") throw new ConfigError(`eval needs --data PATH (the data set the adapter was trained on; its test split is evaluated)`);
      const str = (k: string) => (typeof opts[k] === "string" ? (opts[k] as string) : run[k] ? String(run[k]) : undefined);
      const tm = trained(String(opts.model));
      // the run's test file belongs to the run's data: another --data is evaluated as given
      const sameData = run.data !== undefined && resolve(String(run.data)) === resolve(opts.data);
      const seed = int("--seed", opts.seed ?? run.seed, 0) ?? 0;
      const r = await evaluateTrained(tm, {
        runtime: nodeRuntime,
        data: opts.data,
        format: str("dataFormat") as DataFormat | undefined,
        seed,
        evalData: typeof opts.evalData === "string" ? opts.evalData : sameData && run.evalData ? String(run.evalData) : undefined,
        textColumn: str("textColumn"),
        textPairColumn: str("textPairColumn"),
        labelColumn: str("labelColumn"),
        numLabels: int("numLabels", run.numLabels, 0) || undefined,
        maxLength: int("--max-length", opts.maxLength ?? run.maxLength, 1),
        batchSize: int("--batch-size", opts.batchSize, 1),
        split: opts.split as EvalSplit,
        threads: int("--threads", opts.threads, 1),
        truncation: run.truncation !== "false",
        packing: run.packing === "true",
        warn: (s) => console.error(`warning: ${s}`),
      });
      if (opts.json) console.log(JSON.stringify({ model: opts.model, adapter: opts.adapter, data: opts.data, seed, ...r }));
      else console.log(evalTable(tm, r));
    });
}
