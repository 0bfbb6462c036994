/**
 * `matmul`: fp32 GFLOP/s of 2048×768 · 768×768 through the project's runtime (8 chained products
 * with constant weights in one graph, as the research note measured, and the product alone), and
 * torch.mm's in the same invocation.
 */
import { matmul } from "../src/ir/builder.ts";
import { Graph } from "../src/ir/graph.ts";
import { f32 } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import { Rng } from "../src/tensor/random.ts";
import { TORCH_BEST, TORCH_DEFAULT, burst, emitJson, ratio, runTorch, table, threads, timeIt } from "./harness.ts";

const M = 2048;
const K = 768;
const CHAIN = 8;

/** A graph of `chain` chained [M,K]·[K,K] products with constant weights, compiled, and its run. */
async function chainGraph(chain: number) {
  const rng = new Rng(7);
  const g = new Graph();
  let y = g.input("x", "float32", [M, K]);
  for (let i = 0; i < chain; i++) y = matmul(y, g.initializer(`w${i}`, rng.normalArray(K * K, 1 / Math.sqrt(K)), [K, K]));
  g.output("y", y);
  const c = await compile(g, { threads: threads() });
  const feeds = { x: f32([M, K], rng.normalArray(M * K)) };
  const out = { y: f32([M, K]) };
  return { run: () => c.run(feeds, out), dispose: () => c.dispose() };
}

/** Seconds per run of the `chain`-product graph. */
async function oursChain(chain: number, runs: number): Promise<number> {
  const c = await chainGraph(chain);
  const t = await timeIt(c.run, { warmup: 3, runs });
  c.dispose();
  return t.median;
}

const FLOP_ONE = 2 * M * K * K;

/**
 * The 8-chain graph compiled once, to be timed interleaved with another benchmark's runs (so the
 * rate and the benchmark see the same machine load), each probe a steady-state burst (a single
 * 60 ms run after an idle gap read 220–330 GFLOP/s within one session). `gflops(seconds)` converts
 * a probe's time.
 */
export async function matmulProbe(): Promise<{ run: () => Promise<number>; gflops: (s: number) => number; dispose: () => void }> {
  const c = await chainGraph(CHAIN);
  return { run: burst(c.run), gflops: (s) => (CHAIN * FLOP_ONE) / s / 1e9, dispose: c.dispose };
}

export async function run(): Promise<void> {
  const chainS = await oursChain(CHAIN, 15);
  const singleS = await oursChain(1, 25);
  const torchArgs = { m: M, k: K, n: K, chain: CHAIN, threads: threads(), runs: 15 };
  const best = runTorch<{ single_s: number; chain_s: number }>("matmul", torchArgs, TORCH_BEST);
  const def = runTorch<{ single_s: number; chain_s: number; torch_threads: number }>("matmul", { ...torchArgs, threads: 0 }, TORCH_DEFAULT);
  const gf = (s: number | undefined, n: number) => (s ? (n * FLOP_ONE) / s / 1e9 : null);
  console.log(`fp32 ${M}x${K} · ${K}x${K}, ${threads()} threads; GFLOP/s (2 FLOP per multiply-add)`);
  table(
    ["runner", "8-chain ms/product", "8-chain GFLOP/s", "single ms", "single GFLOP/s"],
    [
      ["ours (ONNX Runtime)", (chainS / CHAIN) * 1e3, gf(chainS, CHAIN), singleS * 1e3, gf(singleS, 1)],
      [TORCH_BEST.name, best && (best.chain_s / CHAIN) * 1e3, gf(best?.chain_s, CHAIN), best && best.single_s * 1e3, gf(best?.single_s, 1)],
      [
        `${TORCH_DEFAULT.name}${def ? `, ${def.torch_threads} thr` : ""}`,
        def && (def.chain_s / CHAIN) * 1e3,
        gf(def?.chain_s, CHAIN),
        def && def.single_s * 1e3,
        gf(def?.single_s, 1),
      ],
    ],
  );
  emitJson("matmul", {
    ours_s: chainS / CHAIN,
    torch_s: best ? best.chain_s / CHAIN : null,
    time_ratio: ratio(chainS, best?.chain_s),
    torch_default_s: def ? def.chain_s / CHAIN : null,
    time_ratio_default: ratio(chainS, def?.chain_s),
    gflops: gf(chainS, CHAIN),
    single_gflops: gf(singleS, 1),
    torch_gflops: gf(best?.chain_s, CHAIN),
    torch_single_gflops: gf(best?.single_s, 1),
    torch_default_gflops: gf(def?.chain_s, CHAIN),
  });
}
