/**
 * `generate`: greedy generation tokens/s of a SmolLM2-135M-shaped Llama (random weights, tied
 * head, GQA 9/3): a prompt of 128 tokens then 128 new ones, at batch 1 and 8, with the KV cache,
 * in float32 and with int8 weight matrices (the `--quantize q8` export's graph), against
 * llama.cpp (node-llama-cpp's prebuilt binary) on the same weights exported to GGUF F32 and Q8_0,
 * the same thread count, the batch as parallel sequences of one context; these four runners are
 * interleaved round by round. Then, for context, full recomputation every step (the same step
 * graph, empty cache) and PyTorch eager with its own KV cache (bench/torch/generate.py, same
 * weights). Tokens/s counts new tokens of the whole batch; the prompt's step is part of the time.
 * `--base-dtypes f16,int8,int4` adds our decoder on those frozen bases (`withBaseDType`, the same
 * weights) to the interleaved runners, each with its time per token over float32's.
 * Options: --batches 1,8 --prompt N --new-tokens N --rounds N (interleaved rounds, default 2)
 * --recompute-tokens N (recomputation timed over its first N new tokens, default all; 0 skips it)
 * --base-dtypes LIST --no-llama-cpp.
 */
import { loadavg } from "node:os";
import { Generator } from "../src/generate/generate.ts";
import type { LoadedModel } from "../src/models/load.ts";
import { type BaseDType, parseBaseDType, withBaseDType } from "../src/models/quantize-base.ts";
import { MODEL_PRESETS } from "../src/pipeline/presets.ts";
import type { Runtime } from "../src/runtime/types.ts";
import { Rng } from "../src/tensor/random.ts";
import { TORCH_BEST, emitJson, interleave, ratio, runTorch, scratchDir, table, threads, writeTensors } from "./harness.ts";
import { type LlamaCppPeer, llamaCppPeer } from "./llama-cpp.ts";
import { randomModel } from "./models.ts";
import { nodeRuntime, nodeRuntimeWith } from "../src/runtime/session.ts";

interface PeerResult {
  results: Record<string, { seconds: number; tokens: number[][] }>;
}

interface Run {
  seconds: number;
  tokens: number[][];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(argv: string[]): Promise<void> {
  let batches = [1, 8];
  let promptLen = 128;
  let newTokens = 128;
  let rounds = 2;
  let recomputeTokens: number | undefined;
  let withLlamaCpp = true;
  let baseDtypes: BaseDType[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--batches") batches = argv[++i].split(",").map(Number);
    else if (argv[i] === "--prompt") promptLen = Number(argv[++i]);
    else if (argv[i] === "--new-tokens") newTokens = Number(argv[++i]);
    else if (argv[i] === "--rounds") rounds = Number(argv[++i]);
    else if (argv[i] === "--recompute-tokens") recomputeTokens = Number(argv[++i]);
    else if (argv[i] === "--no-llama-cpp") withLlamaCpp = false;
    else if (argv[i] === "--base-dtypes") baseDtypes = argv[++i].split(",").map((d) => parseBaseDType(d, "--base-dtypes"));
  }
  const raw = MODEL_PRESETS["smollm2-135m"];
  const model = randomModel(raw);
  // RMSNorm scales of 1 (random ones would shrink every layer's input towards zero)
  for (const [k, t] of model.weights) if (k.endsWith("norm.weight")) t.data.fill(1);
  const rng = new Rng(3);
  const vocab = raw.vocab_size as number;
  const maxB = Math.max(...batches);
  const prompts = Array.from({ length: maxB }, () => Array.from({ length: promptLen }, () => rng.int(vocab)));
  const dir = scratchDir();

  const ours = async (runtime: Runtime, m: LoadedModel = model) => {
    const gen = await Generator.create(m, undefined, { runtime, threads: threads() });
    const generate = async (ps: number[][], n: number, cache = true): Promise<Run> => {
      const toks: number[][] = ps.map(() => []);
      const t0 = process.hrtime.bigint();
      for await (const step of gen.tokens(ps, { maxNewTokens: n, eosTokenIds: [], cache })) step.forEach((t, r) => toks[r].push(t!));
      return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, tokens: toks };
    };
    return { generate, dispose: () => gen.dispose() };
  };
  const f32 = await ours(nodeRuntime);
  const q8 = await ours(nodeRuntimeWith({ quantize: "q8" }));
  const bases = await Promise.all(baseDtypes.map(async (d) => [d, await ours(nodeRuntime, withBaseDType(model, d))] as const));
  let peers: { f32: LlamaCppPeer; q8: LlamaCppPeer } | undefined;
  let peerWhy = "--no-llama-cpp";
  if (withLlamaCpp) {
    try {
      const o = { sequences: maxB, tokens: promptLen + newTokens, threads: threads() };
      peers = { f32: await llamaCppPeer(model, dir, "f32", o), q8: await llamaCppPeer(model, dir, "q8_0", o) };
    } catch (e) {
      peerWhy = `llama.cpp did not load: ${(e as Error).message.split("\n")[0]}`;
    }
  }
  const runners: [string, (ps: number[][], n: number) => Promise<Run>][] = [
    ["ours f32", f32.generate],
    ["ours q8", q8.generate],
    ...bases.map(([d, o]) => [`ours ${d} base`, o.generate] as [string, (ps: number[][], n: number) => Promise<Run>]),
    ...(peers
      ? ([
          ["llama.cpp F32", (ps, n) => peers.f32.generate(ps, n)],
          ["llama.cpp Q8_0", (ps, n) => peers.q8.generate(ps, n)],
        ] as [string, (ps: number[][], n: number) => Promise<Run>][])
      : []),
  ];
  for (const [, g] of runners) await g(prompts.slice(0, 1), 2); // warm-up
  const loadBefore = loadavg();
  const results = new Map<string, Map<number, { seconds: number; tokens: number[][] }>>(runners.map(([name]) => [name, new Map()]));
  for (const B of batches) {
    const last = new Map<string, Run>();
    const samples = await interleave(
      runners.map(([name, g]) => async () => {
        const r = await g(prompts.slice(0, B), newTokens);
        last.set(name, r);
        return r.seconds;
      }),
      { warmup: 0, runs: rounds },
    );
    runners.forEach(([name], i) => results.get(name)!.set(B, { seconds: median(samples[i]), tokens: last.get(name)!.tokens }));
  }
  const loadAfter = loadavg();
  const recompute = new Map<number, Run>();
  if (recomputeTokens !== 0) for (const B of batches) recompute.set(B, await f32.generate(prompts.slice(0, B), recomputeTokens ?? newTokens, false));
  f32.dispose();
  q8.dispose();
  for (const [, o] of bases) o.dispose();
  await peers?.f32.dispose();
  await peers?.q8.dispose();

  writeTensors(dir, model.weights);
  const torch = runTorch<PeerResult>("generate", { config: raw, dir, batches, prompts, new_tokens: newTokens, threads: threads() }, TORCH_BEST, 3600);

  const tps = (B: number, r: Run | undefined) => (r ? (B * r.tokens[0].length) / r.seconds : undefined);
  const agree = (a: number[][] | undefined, b: number[][]) =>
    a ? a.reduce((n, row, r) => n + row.filter((t, i) => t === b[r][i]).length, 0) / (b.length * b[0].length) : undefined;
  const rows = batches.map((B) => {
    const get = (name: string) => results.get(name)?.get(B);
    const ref = get("ours f32")!;
    const p = torch?.results[String(B)];
    return {
      B,
      f32: tps(B, ref),
      q8: tps(B, get("ours q8")),
      cppF32: tps(B, get("llama.cpp F32")),
      cppQ8: tps(B, get("llama.cpp Q8_0")),
      recompute: tps(B, recompute.get(B)),
      torch: p ? (B * newTokens) / p.seconds : undefined,
      sameCpp: agree(get("llama.cpp F32")?.tokens, ref.tokens),
      sameQ8: agree(get("ours q8")?.tokens, ref.tokens),
      bases: baseDtypes.map((d) => ({ dtype: d, tps: tps(B, get(`ours ${d} base`)) })),
    };
  });
  const pct = (x: number | undefined) => (x === undefined ? undefined : `${(100 * x).toFixed(1)} %`);
  console.log(
    `SmolLM2-135M shape (random weights), prompt ${promptLen}, ${newTokens} new tokens, greedy, ${threads()} threads, median of ${rounds} interleaved rounds; tokens/s of the batch`,
  );
  console.log(
    `load average ${loadBefore.map((x) => x.toFixed(2)).join(" ")} before, ${loadAfter.map((x) => x.toFixed(2)).join(" ")} after${peers ? "" : `; llama.cpp: ${peerWhy}`}`,
  );
  table(
    [
      "batch",
      "ours f32",
      "llama.cpp F32",
      "f32 / llama.cpp",
      "ours q8",
      "llama.cpp Q8_0",
      "q8 / llama.cpp",
      "llama.cpp = ours",
      "q8 = f32",
      "recompute",
      TORCH_BEST.name,
      "f32 / torch",
    ],
    rows.map((r) => [
      String(r.B),
      r.f32,
      r.cppF32,
      ratio(r.f32, r.cppF32),
      r.q8,
      r.cppQ8,
      ratio(r.q8, r.cppQ8),
      pct(r.sameCpp),
      pct(r.sameQ8),
      r.recompute,
      r.torch,
      ratio(r.f32, r.torch),
    ]),
  );
  if (baseDtypes.length) {
    console.log("frozen bases: tokens/s, and time per token over float32's (the same invocation, interleaved)");
    table(
      ["batch", "f32", ...baseDtypes.flatMap((d) => [d, `${d} time / f32`])],
      rows.map((r) => [String(r.B), r.f32, ...r.bases.flatMap((x) => [x.tps, ratio(r.f32, x.tps)])]),
    );
  }
  emitJson("generate", {
    prompt: promptLen,
    new_tokens: newTokens,
    rounds,
    loadavg: { before: loadBefore, after: loadAfter },
    tokens_per_s: Object.fromEntries(
      rows.map((r) => [
        r.B,
        { f32: r.f32, q8: r.q8, llama_cpp_f32: r.cppF32 ?? null, llama_cpp_q8_0: r.cppQ8 ?? null, recompute: r.recompute ?? null, torch: r.torch ?? null },
      ]),
    ),
    f32_over_llama_cpp: Object.fromEntries(rows.map((r) => [r.B, ratio(r.f32, r.cppF32)])),
    q8_over_llama_cpp_q8_0: Object.fromEntries(rows.map((r) => [r.B, ratio(r.q8, r.cppQ8)])),
    cache_over_torch: Object.fromEntries(rows.map((r) => [r.B, ratio(r.f32, r.torch)])),
    base_time_over_f32: Object.fromEntries(rows.map((r) => [r.B, Object.fromEntries(r.bases.map((x) => [x.dtype, ratio(r.f32, x.tps)]))])),
  });
}
