/**
 * `constructions`: the training-step time of each of the eight constructions at the LoRA-r=8
 * parameter budget (per-mode ranks from `ranksForBudget` with the slack train and compare use by
 * default; `--rank-slack 0` for the strict rule), divided by our LoRA step time, on a
 * ViT-B/16-shaped model (d 768, 12 heads, 12 layers: every mode size and rank as in ViT-B) with a
 * smaller batch than `step-vit` (default 2 images, 394 tokens per step) so the whole sweep runs in
 * minutes. Per token, a construction costs what its ranks cost (x·U_in and u·R[p,l] with the input
 * rank r_in, e.g. 153 for att_qkv_depth against LoRA's 8), whatever the batch; only the per-step
 * slice computation weighs more at this batch than at 8. All sessions are compiled first and timed
 * interleaved step by step, so each ratio is measured under the same machine load. Each time ratio
 * is also divided by the construction's FLOP ratio to LoRA: near 1 when the slices run at the rate
 * of the rest of the step, above it when they cost more than their arithmetic.
 *
 * Peer: PyTorch eager doing what the official code does (fold the full Tucker tensor at every
 * projection call, slice ΔW, add x·ΔW), each construction's time over PyTorch's own LoRA step.
 */
import { DEFAULT_RANK_SLACK, groupRanksForBudget } from "../src/adapters/params.ts";
import { CONSTRUCTIONS, type Construction } from "../src/adapters/constructions.ts";
import { type TargetModules, parseTargetModules } from "../src/adapters/targets.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { WeightStore } from "../src/onnx/weight-store.ts";
import { TORCH_BEST, emitJson, interleave, median, peakRssMiB, runTorch, table, threads } from "./harness.ts";
import { VIT_B16, randomModel } from "./models.ts";
import { trainingStep } from "./step.ts";

interface Args {
  batch: number;
  rounds: number;
  runs: number;
  warmup: number;
  rank: number;
  layers?: number;
  torch: boolean;
  only?: Construction[];
  rankSlack: number;
  /** --target-modules: names, "all-linear" or /regex/ (default query,key,value). */
  targets?: TargetModules;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { batch: 2, rounds: 4, runs: 3, warmup: 2, rank: 8, torch: true, rankSlack: DEFAULT_RANK_SLACK };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === "--batch") a.batch = Number(argv[++i]);
    else if (k === "--rounds") a.rounds = Number(argv[++i]);
    else if (k === "--runs") a.runs = Number(argv[++i]);
    else if (k === "--warmup") a.warmup = Number(argv[++i]);
    else if (k === "--layers") a.layers = Number(argv[++i]);
    else if (k === "--no-torch") a.torch = false;
    else if (k === "--only") a.only = argv[++i].split(",") as Construction[];
    else if (k === "--rank-slack") a.rankSlack = Number(argv[++i]);
    else if (k === "--target-modules") a.targets = parseTargetModules(argv[++i]);
  }
  return a;
}

export async function run(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const overrides = args.layers ? { num_hidden_layers: args.layers } : {};
  const model = randomModel(VIT_B16, overrides);
  const sites = modelContext(model).sites;
  const targetModules = args.targets;
  const list = (args.only ?? [...CONSTRUCTIONS]).filter((c) => c !== "lora");
  // every construction at LoRA r's count on the same sites, group by group
  const plan = new Map<Construction, { ranks: number[]; groupRanks: Record<string, number[]>; count: number }>();
  for (const c of ["lora", ...list] as Construction[]) {
    const solved = groupRanksForBudget({ construction: c, targetModules }, sites, { isoLora: args.rank }, { slack: args.rankSlack });
    const ranks = Object.values(solved.groupRanks);
    plan.set(c, { ranks: ranks.flat(), groupRanks: solved.groupRanks, count: solved.groups.reduce((n, g) => n + g.result.count, 0) });
  }
  const budget = plan.get("lora")!.count;
  // the PyTorch peer folds q/k/v tensors only
  if (targetModules !== undefined) args.torch = false;

  const store = new WeightStore();
  const steps = new Map<Construction, Awaited<ReturnType<typeof trainingStep>>>();
  for (const [c, { groupRanks }] of plan) {
    steps.set(
      c,
      await trainingStep(model, { construction: c, ranks: Object.values(groupRanks)[0], groupRanks, targetModules }, args.batch, undefined, { store }),
    );
  }
  const times = new Map<Construction, number[]>([...plan.keys()].map((c) => [c, []]));
  const names = [...steps.keys()];
  for (let round = 0; round < args.rounds; round++) {
    const samples = await interleave(
      names.map((c) => steps.get(c)!.step),
      { warmup: round === 0 ? args.warmup : 1, runs: args.runs, gapMs: 50 },
    );
    names.forEach((c, i) => times.get(c)!.push(...samples[i]));
    console.log(`round ${round + 1}/${args.rounds}: ${[...times].map(([c, t]) => `${c} ${median(t).toFixed(3)}`).join(", ")}`);
  }
  const flops = new Map([...steps].map(([c, s]) => [c, s.flops]));
  for (const s of steps.values()) s.dispose();
  store.dispose();

  let torch: { times: Record<string, number>; fold_gflop: Record<string, number> } | undefined;
  if (args.torch) {
    torch = runTorch(
      "constructions",
      {
        config: { ...VIT_B16, ...overrides },
        batch: args.batch,
        ranks: Object.fromEntries([...plan].map(([c, p]) => [c, p.ranks])),
        threads: threads(),
        warmup: 1,
        runs: 3,
      },
      TORCH_BEST,
    );
  }

  const lora = median(times.get("lora")!);
  const ratios: Record<string, number> = {};
  const flopRatios: Record<string, number> = {};
  const torchRatios: Record<string, number | null> = {};
  const rows = [...plan].map(([c, p]) => {
    const t = median(times.get(c)!);
    ratios[c] = t / lora;
    flopRatios[c] = flops.get(c)! / flops.get("lora")!;
    const tt = torch?.times[c];
    torchRatios[c] = tt && torch ? tt / torch.times.lora : null;
    return [c, `[${p.ranks.join(",")}]`, p.count, t, t / lora, flops.get(c)! / 1e9, flopRatios[c], ratios[c] / flopRatios[c], tt ?? null, torchRatios[c]];
  });
  const L = model.config.numHiddenLayers;
  console.log(
    `ViT-B/16 shape (d 768, 12 heads, ${L} layers), targets ${JSON.stringify(targetModules ?? "query,key,value")}, batch ${args.batch} (${args.batch * 197} tokens), LoRA r=${args.rank} budget = ${budget} parameters, rank slack ${args.rankSlack}; ` +
      `${times.get("lora")!.length} timed steps each, interleaved; torch: best configuration, fold the full tensor per projection call`,
  );
  table(
    [
      "construction",
      "ranks",
      "params",
      "ours s/step",
      "ours / LoRA",
      "GFLOP/step",
      "FLOPs / LoRA's",
      "time ÷ FLOP ratio",
      "torch s/step",
      "torch / torch LoRA",
    ],
    rows,
  );
  delete ratios.lora;
  delete flopRatios.lora;
  delete torchRatios.lora;
  const maxRatio = Math.max(...Object.values(ratios));
  const overFlops = Object.fromEntries(Object.entries(ratios).map(([c, r]) => [c, r / flopRatios[c]]));
  emitJson("constructions", {
    model: `vit-b16-shape, ${L} layers, batch ${args.batch}`,
    target_modules: targetModules ?? null,
    lora_s: lora,
    ratios,
    max_ratio: maxRatio,
    flop_ratios: flopRatios,
    over_flops: overFlops,
    max_over_flops: Math.max(...Object.values(overFlops)),
    torch_lora_s: torch?.times.lora ?? null,
    torch_ratios: torch ? torchRatios : null,
    torch_max_ratio: torch ? Math.max(...Object.values(torchRatios).map((x) => x ?? 0)) : null,
    peak_rss_mib: peakRssMiB(),
    ranks: Object.fromEntries([...plan].map(([c, p]) => [c, p.ranks])),
    rank_slack: args.rankSlack,
  });
}
