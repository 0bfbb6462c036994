/**
 * `dims`: inference time of one graph built with free dims (batch_size, sequence_length: what
 * `merge --onnx` exports and generation compiles) against the same graph built at the concrete
 * batch shape (what training and `infer` compile), for ViT-B/16 (batch 8) and RoBERTa-base
 * (batch 8, sequence 128), timed interleaved run by run. JSON `time_ratio` = symbolic / fixed.
 */
import { buildModelGraph } from "../src/pipeline/build.ts";
import { BATCH, SEQ } from "../src/models/dims.ts";
import { WeightStore } from "../src/onnx/weight-store.ts";
import { compile } from "../src/runtime/session.ts";
import { emitJson, interleave, median, table, threads } from "./harness.ts";
import { ROBERTA_BASE, VIT_B16, randomModel } from "./models.ts";
import { batchFeeds } from "./step.ts";

export async function run(argv: string[]): Promise<void> {
  let runs = 5;
  for (let i = 0; i < argv.length; i++) if (argv[i] === "--runs") runs = Number(argv[++i]);
  const batch = 8;
  const rows: [string, number, number, number][] = [];
  for (const [name, raw, seqLen] of [
    ["ViT-B/16", VIT_B16, undefined],
    ["RoBERTa-base", ROBERTA_BASE, 128],
  ] as const) {
    const model = randomModel(raw);
    const feeds = batchFeeds(model, batch, seqLen);
    delete feeds.labels;
    const store = new WeightStore();
    const graph = (b: number | string, t: number | string | undefined) =>
      compile(buildModelGraph({ model, batch: b, seqLen: t, trainable: "none" }).graph, { store, threads: threads(), outputs: ["logits"] });
    const fixed = await graph(batch, seqLen);
    const symbolic = await graph(BATCH, seqLen === undefined ? undefined : SEQ);
    const [tf, ts] = await interleave([() => fixed.run(feeds), () => symbolic.run(feeds)], { warmup: 2, runs });
    fixed.dispose();
    symbolic.dispose();
    store.dispose();
    rows.push([name, median(tf), median(ts), median(ts) / median(tf)]);
  }
  console.log(`inference, batch 8, ${threads()} threads; ${runs} timed runs each, interleaved`);
  table(
    ["model", "fixed ms", "symbolic ms", "symbolic / fixed"],
    rows.map(([n, f, s, r]) => [n, f * 1e3, s * 1e3, r]),
  );
  emitJson("dims", { time_ratio: Math.max(...rows.map((r) => r[3])), ratios: Object.fromEntries(rows.map((r) => [r[0], r[3]])) });
}
