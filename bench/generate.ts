/**
 * `generate`: greedy generation tokens/s of a SmolLM2-135M-shaped Llama (random weights, tied
 * head, GQA 9/3): a prompt of 128 tokens then 128 new ones, at batch 1 and 8, with the KV cache,
 * by full recomputation every step (the same step graph, empty cache), and PyTorch eager with
 * its own KV cache (bench/torch/generate.py, same weights) in the same run. Tokens/s counts new
 * tokens of the whole batch; the prompt's step is part of the time. Options: --batches 1,8
 * --prompt N --new-tokens N --recompute-tokens N (recomputation timed over its first N new
 * tokens, default all).
 */
import { Generator } from "../src/generate/generate.ts";
import { MODEL_PRESETS } from "../src/pipeline/presets.ts";
import { Rng } from "../src/tensor/random.ts";
import { TORCH_BEST, emitJson, ratio, runTorch, scratchDir, table, threads, writeTensors } from "./harness.ts";
import { randomModel } from "./models.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

interface PeerResult {
  results: Record<string, { seconds: number; tokens: number[][] }>;
}

export async function run(argv: string[]): Promise<void> {
  let batches = [1, 8];
  let promptLen = 128;
  let newTokens = 128;
  let recomputeTokens: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--batches") batches = argv[++i].split(",").map(Number);
    else if (argv[i] === "--prompt") promptLen = Number(argv[++i]);
    else if (argv[i] === "--new-tokens") newTokens = Number(argv[++i]);
    else if (argv[i] === "--recompute-tokens") recomputeTokens = Number(argv[++i]);
  }
  const raw = MODEL_PRESETS["smollm2-135m"];
  const model = randomModel(raw);
  // RMSNorm scales of 1 (random ones would shrink every layer's input towards zero)
  for (const [k, t] of model.weights) if (k.endsWith("norm.weight")) t.data.fill(1);
  const rng = new Rng(3);
  const vocab = raw.vocab_size as number;
  const prompts = Array.from({ length: Math.max(...batches) }, () => Array.from({ length: promptLen }, () => rng.int(vocab)));

  const gen = await Generator.create(model, undefined, { runtime: nodeRuntime, threads: threads() });
  const timeGen = async (B: number, cache: boolean, n: number) => {
    const toks: number[][] = prompts.slice(0, B).map(() => []);
    const t0 = process.hrtime.bigint();
    for await (const step of gen.tokens(prompts.slice(0, B), { maxNewTokens: n, eosTokenIds: [], cache })) step.forEach((t, r) => toks[r].push(t!));
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, tokens: toks };
  };
  await timeGen(1, true, 2); // warm-up
  const ours = new Map<number, { cache: Awaited<ReturnType<typeof timeGen>>; recompute: Awaited<ReturnType<typeof timeGen>> }>();
  for (const B of batches) {
    const cache = await timeGen(B, true, newTokens);
    const recompute = await timeGen(B, false, recomputeTokens ?? newTokens);
    ours.set(B, { cache, recompute });
  }
  gen.dispose();

  const dir = scratchDir();
  writeTensors(dir, model.weights);
  const peer = runTorch<PeerResult>("generate", { config: raw, dir, batches, prompts, new_tokens: newTokens, threads: threads() }, TORCH_BEST, 3600);

  const tps = (B: number, r: { seconds: number; tokens: number[][] }) => (B * r.tokens[0].length) / r.seconds;
  const rows = batches.map((B) => {
    const o = ours.get(B)!;
    const p = peer?.results[String(B)];
    const same = p ? o.cache.tokens.reduce((n, row, r) => n + row.filter((t, i) => t === p.tokens[r][i]).length, 0) / (B * newTokens) : undefined;
    return { B, cache: tps(B, o.cache), recompute: tps(B, o.recompute), torch: p ? (B * newTokens) / p.seconds : undefined, same };
  });
  console.log(`SmolLM2-135M shape (random weights), prompt ${promptLen}, ${newTokens} new tokens, greedy, ${threads()} threads; tokens/s of the batch`);
  table(
    ["batch", "KV cache", "recompute", TORCH_BEST.name, "cache / recompute", "cache / torch", "tokens = torch"],
    rows.map((r) => [
      String(r.B),
      r.cache,
      r.recompute,
      r.torch,
      ratio(r.cache, r.recompute),
      ratio(r.cache, r.torch),
      r.same === undefined ? undefined : `${(100 * r.same).toFixed(1)} %`,
    ]),
  );
  emitJson("generate", {
    prompt: promptLen,
    new_tokens: newTokens,
    recompute_tokens: recomputeTokens ?? newTokens,
    tokens_per_s: Object.fromEntries(rows.map((r) => [r.B, { cache: r.cache, recompute: r.recompute, torch: r.torch ?? null }])),
    cache_over_torch: Object.fromEntries(rows.map((r) => [r.B, ratio(r.cache, r.torch)])),
    cache_over_recompute: Object.fromEntries(rows.map((r) => [r.B, ratio(r.cache, r.recompute)])),
  });
}
