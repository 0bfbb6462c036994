/**
 * `llm-adapter`: the adapter part alone at decoder scale (d 4096, 32 layers, 32 heads, q/k/v,
 * 2048 tokens per layer), for qkv_depth and att_qkv_depth at the LoRA-r=16 parameter budget:
 * one graph computes every slice R[p,l] with `allSlicesR` and applies each projection's update
 * s·(x_l U_in) R[p,l] through the models' own adapter hook; each [2048, 4096] update is consumed
 * (summed to a number) at once. Time and peak memory (RSS) of a run, and of the slices alone.
 *
 * Each layer gets its own input x_l (overlapping views of one buffer, so the inputs cost 33 MB,
 * not 1 GiB) and the graph runs at ORT optimisation level 'disabled', so nothing is shared
 * between layers that a real model would not share.
 *
 * Peer: folding the full tensor as the official code does (PyTorch), after estimating its bytes:
 * reported as "does not fit" when the estimate exceeds the memory cap (half of MemAvailable by
 * default, `--fold-cap-gib`), never attempted then.
 */
import { readFileSync } from "node:fs";
import { createAdapterSet } from "../src/adapters/adapter-set.ts";
import { factorKey } from "../src/adapters/tensor-graph.ts";
import { planAdapter } from "../src/adapters/config.ts";
import { type Construction, modeSizes, modelShape } from "../src/adapters/constructions.ts";
import { adapterHook, allSlicesR } from "../src/adapters/inject.ts";
import { isoLoRA, ranksForBudget } from "../src/adapters/params.ts";
import * as b from "../src/ir/builder.ts";
import { Graph, type Value } from "../src/ir/graph.ts";
import type { LinearSite } from "../src/nn/sites.ts";
import { ParamScope } from "../src/nn/params.ts";
import { type HostTensor, f32 } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import { Rng } from "../src/tensor/random.ts";
import { TORCH_BEST, emitJson, graphFlops, peakRssMiB, rssMiB, runTorch, table, threads, timeIt } from "./harness.ts";

const D = 4096;
const LAYERS = 32;
const HEADS = 32;
const TOKENS = 2048;
const PROJ = ["q_proj", "k_proj", "v_proj"];

function memAvailableBytes(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

export function adapterFor(construction: Construction, rank: number) {
  const shape = modelShape({ dIn: D, dOut: D, heads: HEADS, layers: LAYERS, projections: PROJ });
  const budget = isoLoRA(shape, rank);
  const { ranks, count } = ranksForBudget(construction, shape, budget);
  const sites: LinearSite[] = Array.from({ length: LAYERS }, (_, l) =>
    PROJ.map(
      (name): LinearSite => ({
        path: `model.layers.${l}.self_attn.${name}`,
        name,
        layer: l,
        inFeatures: D,
        outFeatures: D,
        heads: { side: "out", count: HEADS, dim: D / HEADS },
      }),
    ),
  ).flat();
  const { config, groups } = planAdapter({ construction, ranks, targetModules: PROJ }, sites);
  const set = createAdapterSet(config, groups, 0);
  // non-zero core: a trained adapter
  const rng = new Rng(2);
  for (const [k, t] of set.tensors) if (k.endsWith(".core")) t.data = rng.normalArray(t.data.length, 0.02);
  return { set, shape, ranks, count, budget };
}

/** The graph: every slice, then every projection's update, summed. */
export function adapterGraph(set: ReturnType<typeof adapterFor>["set"], slicesOnly: boolean) {
  const g = new Graph();
  const scope = new ParamScope(g, set.tensors, () => true);
  const get = (n: string) => scope.get(n);
  if (slicesOnly) {
    const r = allSlicesR(set, 0, get);
    g.output("R", b.reduceSum(r, [...r.shape.keys()])); // consumed in the graph, not copied out
    return { graph: g, params: scope.trainable.map((t) => t.name) };
  }
  const hook = adapterHook(set, get);
  // Each update is consumed at once (reduced to a number), as a model adds it to its projection's
  // output and moves on: summing the 96 [2048, 4096] updates into one tensor instead let ONNX
  // Runtime's execution order hold all of them (3 GB) alive at once.
  let acc: Value | undefined;
  for (let l = 0; l < LAYERS; l++) {
    const x = g.input(`x${l}`, "float32", [TOKENS, D]);
    for (const delta of hook(
      x,
      set.groups[0].grid.map((row) => row[l]),
    )) {
      const used = b.reduceSum(delta!, [0, 1]);
      acc = acc ? b.add(acc, used) : used;
    }
  }
  g.output("y", acc!);
  return { graph: g, params: scope.trainable.map((t) => t.name) };
}

export async function run(argv: string[]): Promise<void> {
  let rank = 16;
  let runs = 5;
  let capGiB: number | undefined;
  let torch = true;
  const list: Construction[] = ["qkv_depth", "att_qkv_depth"];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--rank") rank = Number(argv[++i]);
    else if (argv[i] === "--runs") runs = Number(argv[++i]);
    else if (argv[i] === "--fold-cap-gib") capGiB = Number(argv[++i]);
    else if (argv[i] === "--no-torch") torch = false;
  }
  const cap = capGiB !== undefined ? capGiB * 2 ** 30 : memAvailableBytes() / 2;
  // one buffer, 32 overlapping [2048, 4096] views: distinct inputs per layer at the cost of one
  const rng = new Rng(4);
  const buf = rng.normalArray((TOKENS + LAYERS) * D);
  const rows: (string | number | null)[][] = [];
  const results: Record<string, unknown> = {};
  for (const c of list) {
    const { set, ranks, count, budget } = adapterFor(c, rank);
    const rss0 = rssMiB();
    const paramFeeds: Record<string, HostTensor> = {};
    for (const [k, t] of set.tensors) paramFeeds[k] = f32(t.shape, t.data);
    const full = adapterGraph(set, false);
    const flops = graphFlops(full.graph);
    const gFull = await compile(full.graph, { threads: threads(), optimization: "disabled" });
    const feeds: Record<string, HostTensor> = { ...paramFeeds };
    for (let l = 0; l < LAYERS; l++) feeds[`x${l}`] = f32([TOKENS, D], buf.subarray(l * D, (l + TOKENS) * D));
    const into = { y: f32([], new Float32Array(1)) };
    const tFull = await timeIt(() => gFull.run(feeds, into), { warmup: 2, runs });
    const rssRun = rssMiB();
    gFull.dispose();
    const slices = adapterGraph(set, true);
    const gSlices = await compile(slices.graph, { threads: threads(), optimization: "disabled" });
    const sliceFeeds = Object.fromEntries(slices.params.map((k) => [k, paramFeeds[k]]));
    const tSlices = await timeIt(() => gSlices.run(sliceFeeds), { warmup: 3, runs: 3 * runs });
    gSlices.dispose();
    const sizes = modeSizes(c, set.groups[0].shape);
    const foldedBytes = 4 * sizes.reduce((a, n) => a * n, 1);
    const rBytes = 4 * LAYERS * PROJ.length * set.tensors.get(factorKey(0, 0))!.shape[1] * D;
    let peer: { fits: boolean; needed_bytes: number; fold_s?: number; apply_s?: number; total_s?: number; peak_rss_mib?: number } | undefined;
    if (torch) {
      peer = runTorch(
        "llm_adapter",
        { construction: c, sizes, ranks, tokens: TOKENS, layers: LAYERS, projections: PROJ.length, cap_bytes: cap, threads: threads(), heads: HEADS },
        TORCH_BEST,
      );
    }
    rows.push([
      c,
      `[${ranks.join(",")}]`,
      count,
      tFull.median,
      tSlices.median * 1e3,
      flops / tFull.median / 1e9,
      rssRun - rss0,
      peakRssMiB(),
      foldedBytes / 2 ** 30,
      peer ? (peer.fits ? peer.total_s! : "does not fit") : null,
    ]);
    results[c] = {
      ranks,
      params: count,
      budget,
      ours_s: tFull.median,
      slices_s: tSlices.median,
      gflops: flops / tFull.median / 1e9,
      flop: flops,
      rss_growth_mib: rssRun - rss0,
      slices_bytes: rBytes,
      param_bytes: 4 * count,
      folded_tensor_bytes: foldedBytes,
      fold_fits: peer?.fits ?? null,
      fold_needed_bytes: peer?.needed_bytes ?? null,
      fold_total_s: peer?.total_s ?? null,
      fold_one_s: peer?.fold_s ?? null,
      fold_peak_rss_mib: peer?.fits ? (peer.peak_rss_mib ?? null) : null,
      time_ratio: peer?.total_s ? tFull.median / peer.total_s : null,
    };
  }
  console.log(
    `Adapter alone at decoder scale: d ${D}, ${LAYERS} layers, ${HEADS} heads, q/k/v, ${TOKENS} tokens per layer, LoRA r=${rank} budget; ` +
      `${threads()} threads; fold memory cap ${(cap / 2 ** 30).toFixed(1)} GiB`,
  );
  table(
    [
      "construction",
      "ranks",
      "params",
      "ours s (slices+apply)",
      "slices ms",
      "GFLOP/s",
      "RSS growth MiB",
      "peak RSS MiB",
      "folded tensor GiB",
      "official fold s",
    ],
    rows,
  );
  emitJson("llm-adapter", { tokens: TOKENS, rank_budget: rank, fold_cap_bytes: cap, peak_rss_mib: peakRssMiB(), ...results });
}
