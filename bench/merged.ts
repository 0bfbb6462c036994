/**
 * `merged`: inference (forward, logits only) of a ViT-B/16-shaped model whose adapter was merged
 * into the frozen weights, against the base model without adapter (JSON `time_ratio`). For
 * context, the same adapters unmerged (applied at run time) are timed too. Adapters: LoRA r=8 and
 * att_qkv_depth at the LoRA-r=8 budget, with non-zero updates. All sessions are timed
 * interleaved, run by run.
 */
import { mergeAdapter } from "../src/adapters/merge.ts";
import { groupRanksForBudget } from "../src/adapters/params.ts";
import { createAdapter, modelContext } from "../src/pipeline/context.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import type { LoadedModel } from "../src/models/load.ts";
import { WeightStore } from "../src/onnx/weight-store.ts";
import { compile } from "../src/runtime/session.ts";
import type { CompiledGraph } from "../src/runtime/types.ts";
import { Rng } from "../src/tensor/random.ts";
import { emitJson, interleave, median, peakRssMiB, table, threads } from "./harness.ts";
import { VIT_B16, randomModel } from "./models.ts";
import { batchFeeds } from "./step.ts";

export async function run(argv: string[]): Promise<void> {
  let batch = 8;
  let rounds = 5;
  let runs = 3;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--batch") batch = Number(argv[++i]);
    else if (argv[i] === "--rounds") rounds = Number(argv[++i]);
    else if (argv[i] === "--runs") runs = Number(argv[++i]);
  }
  const model = randomModel(VIT_B16);
  const { groupRanks } = groupRanksForBudget({ construction: "att_qkv_depth" }, modelContext(model).sites, { isoLora: 8 });
  const adapters = {
    lora: createAdapter(model, { construction: "lora", ranks: 8 }).set,
    att_qkv_depth: createAdapter(model, { construction: "att_qkv_depth", ranks: Object.values(groupRanks)[0] }).set,
  };
  // a trained adapter has a non-zero update: fill the zero-initialised parts
  const rng = new Rng(9);
  for (const set of Object.values(adapters))
    for (const [k, t] of set.tensors) if (t.data.every((v) => v === 0)) set.tensors.set(k, { shape: t.shape, data: rng.normalArray(t.data.length, 0.02) });

  const feeds = batchFeeds(model, batch, undefined);
  delete feeds.labels;
  const store = new WeightStore();
  const graphs = new Map<string, CompiledGraph>();
  const inference = async (name: string, m: LoadedModel, adapter?: (typeof adapters)[keyof typeof adapters]) => {
    const built = buildModelGraph({ model: m, adapter, batch, trainable: "none" });
    graphs.set(name, await compile(built.graph, { store, threads: threads(), outputs: ["logits"] }));
  };
  await inference("base", model);
  for (const [name, set] of Object.entries(adapters)) {
    await inference(`${name} merged`, { ...model, weights: mergeAdapter(model.weights, set) });
    await inference(`${name} unmerged`, model, set);
  }
  const times = new Map<string, number[]>([...graphs.keys()].map((k) => [k, []]));
  const into = { logits: { dtype: "float32" as const, shape: [batch, model.config.numLabels], data: new Float32Array(batch * model.config.numLabels) } };
  const names = [...graphs.keys()];
  for (let round = 0; round < rounds; round++) {
    const samples = await interleave(
      names.map((n) => () => graphs.get(n)!.run(feeds, into)),
      { warmup: round === 0 ? 3 : 1, runs, gapMs: 50 },
    );
    names.forEach((n, i) => times.get(n)!.push(...samples[i]));
  }
  for (const g of graphs.values()) g.dispose();
  store.dispose();
  const base = median(times.get("base")!);
  const r = (k: string) => median(times.get(k)!) / base;
  console.log(`ViT-B/16 inference, batch ${batch}, ${threads()} threads; ${times.get("base")!.length} timed runs each, interleaved run by run`);
  table(
    ["graph", "ms/batch", "/ base"],
    [...times].map(([k, t]) => [k, median(t) * 1e3, median(t) / base]),
  );
  const ratios = { lora: r("lora merged"), att_qkv_depth: r("att_qkv_depth merged") };
  emitJson("merged", {
    ours_s: median(times.get("att_qkv_depth merged")!),
    base_s: base,
    time_ratio: Math.max(ratios.lora, ratios.att_qkv_depth),
    merged_ratios: ratios,
    unmerged_ratios: { lora: r("lora unmerged"), att_qkv_depth: r("att_qkv_depth unmerged") },
    peak_rss_mib: peakRssMiB(),
  });
}
