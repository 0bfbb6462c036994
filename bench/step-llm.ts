/**
 * `step-llm`: one causal-LM training step of a SmolLM2-135M-shaped decoder (hidden 576, 30
 * layers, 9 query / 3 K/V heads, MLP 1536, vocabulary 49,152, tied; random weights), batch 4,
 * sequence 512 by default: LoRA r=16 on all seven linear layers, and qkv_depth on the same
 * layers at LoRA's parameter budget, each a full step (forward, shifted cross-entropy over the
 * vocabulary, backward, AdamW in TypeScript), against the same LoRA step in PyTorch eager
 * (bench/torch/step_llm.py) interleaved in the same run. `--checkpoint` recomputes every layer in
 * the backward pass, ours and PyTorch's (torch.utils.checkpoint); `--loss-chunk N` computes our
 * logits and loss N positions at a time (default: as `train` does, in chunks where the whole
 * logits would exceed 128 MiB; `--loss-chunk 0`: whole); `--lora-only` skips qkv_depth and `--qkv-depth-only`
 * LoRA (and PyTorch), so that the peak RSS is that of the one step (it is the whole process's,
 * every graph); `--no-prepack` turns off ONNX
 * Runtime's pre-packed weight copies (CompileOptions.prepack), `--no-arena` its CPU memory arena.
 *
 * `--shape` takes a decoder preset of src/models/presets.ts instead (llama-3.2-1b, llama-3.2-3b);
 * `--base-dtype int8|int4` holds the frozen linear weights quantized; `--dtypes f32,int4` runs one
 * child process per dtype in turn (peak RSS is per process), LoRA only unless `--qkv-depth-only`,
 * see step-llm-dtypes.ts.
 *
 *   npm run bench -- step-llm [--seq 512] [--batch 4] [--layers N] [--checkpoint] [--loss-chunk N] [--lora-only | --qkv-depth-only] [--no-prepack] [--no-arena]
 *                             [--shape smollm2-135m] [--base-dtype f32] [--dtypes f32,int4]
 *                             [--rounds 1] [--warmup 1] [--runs 3] [--no-torch]
 */
import { groupRanksForBudget } from "../src/adapters/params.ts";
import { parseBaseDType } from "../src/models/quantize-base.ts";
import { defaultProviders } from "../src/runtime/session.ts";
import { TORCH_BEST, TorchPeer, emitJson, interleave, median, peakRssMiB, ratio, table, threads } from "./harness.ts";
import { matmulProbe } from "./matmul.ts";
import { decoderShape, randomModel } from "./models.ts";
import { parseStepArgs, trainingStep } from "./step.ts";

const ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

export async function run(argv: string[]): Promise<void> {
  if (argv.includes("--dtypes")) return (await import("./step-llm-dtypes.ts")).run(argv);
  const args = parseStepArgs(argv, { warmup: 1, runs: 3, rank: 16 });
  const num = (flag: string, d: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const str = (flag: string, d: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : d;
  };
  const shapeName = str("--shape", "smollm2-135m");
  const shape = decoderShape(shapeName);
  const baseDtype = parseBaseDType(str("--base-dtype", "f32"));
  const T = num("--seq", 512);
  const B = num("--batch", 4);
  const checkpointActivations = argv.includes("--checkpoint");
  // as `train` computes it: in chunks where the whole logits would be large (0: whole)
  const lossChunk = argv.includes("--loss-chunk") ? num("--loss-chunk", 0) : ("auto" as const);
  const memory = { checkpointActivations, lossChunk, prepack: !argv.includes("--no-prepack"), arena: !argv.includes("--no-arena") };
  const overrides = args.layers ? { num_hidden_layers: args.layers } : {};
  const model = randomModel(shape, overrides, 1, baseDtype);
  // --lora-only / --qkv-depth-only: one runner, so that the peak RSS is that one step's
  const only = argv.includes("--qkv-depth-only") ? "qkv_depth" : argv.includes("--lora-only") ? "lora" : undefined;
  const runners: { name: string; step: () => Promise<unknown>; flops: number; params: number; dispose: () => void }[] = [];
  let lora: Awaited<ReturnType<typeof trainingStep>> | undefined;
  if (only !== "qkv_depth") {
    lora = await trainingStep(model, { construction: "lora", ranks: args.rank, targetModules: ALL_LINEAR }, B, T, memory);
    runners.push({ name: `ours LoRA r=${args.rank} all-linear`, step: lora.step, flops: lora.flops, params: lora.trainableParams, dispose: lora.dispose });
  }
  let depthNote = "";
  if (only !== "lora")
    try {
      const base = { construction: "qkv_depth", targetModules: ALL_LINEAR };
      const { groupRanks } = groupRanksForBudget(base, model.family.linearSites(model.config), { isoLora: args.rank });
      const depth = await trainingStep(model, { ...base, ranks: Object.values(groupRanks)[0], groupRanks }, B, T, memory);
      const shown = Object.entries(groupRanks)
        .map(([g, r]) => `${g} ${r.join(",")}`)
        .join("; ");
      runners.push({
        name: `ours qkv_depth all-linear (${shown})`,
        step: depth.step,
        flops: depth.flops,
        params: depth.trainableParams,
        dispose: depth.dispose,
      });
    } catch (e) {
      if (only) throw e;
      depthNote = `qkv_depth on all-linear: not run (${(e as Error).message.split("\n")[0]})`;
      console.log(depthNote);
    }
  const loraFlops = lora?.flops ?? null;
  const torch =
    args.torch && lora
      ? await TorchPeer.start(
          "step_llm",
          {
            config: { ...shape, ...overrides },
            batch: B,
            seq_len: T,
            rank: args.rank,
            targets: ALL_LINEAR,
            threads: threads(),
            checkpoint: checkpointActivations,
          },
          TORCH_BEST,
        )
      : undefined;
  const mmProbe = await matmulProbe();
  const fns: (() => Promise<unknown>)[] = [...runners.map((r) => r.step), mmProbe.run, ...(torch ? [() => torch.step()] : [])];
  const samples: number[][] = fns.map(() => []);
  for (let round = 0; round < args.rounds; round++) {
    const s = await interleave(fns, { warmup: round === 0 ? args.warmup : 0, runs: args.runs, gapMs: 300 });
    s.forEach((xs, i) => samples[i].push(...xs));
    console.log(`round ${round + 1}/${args.rounds}: ${s.map((xs) => xs.map((x) => x.toFixed(2)).join(" ")).join(" | ")}`);
  }
  const mm = median(samples[runners.length].map(mmProbe.gflops));
  mmProbe.dispose();
  const torchInfo = torch ? ((await torch.close()) as { peak_rss_mib: number; torch_threads: number; trainable_params: number }) : undefined;
  const torchS = torch ? median(samples.at(-1)!) : null;
  const tokens = B * T;
  console.log(
    `step-llm: ${shapeName} shape${args.layers ? ` (${args.layers} layers)` : ""}, base ${baseDtype}, batch ${B}, sequence ${T}; ${(runners[0].flops / 1e9).toFixed(0)} GFLOP per ${runners[0].name.replace("ours ", "")} step; ` +
      `activation checkpointing ${checkpointActivations ? "on (both)" : "off"}, loss ${lossChunk === "auto" ? "chunked as train does" : lossChunk ? `in chunks of ${lossChunk} positions` : "whole"}, ` +
      `weight pre-packing ${memory.prepack ? "on" : "off"}, CPU arena ${memory.arena ? "on" : "off"}; ` +
      `ONNX Runtime EP ${defaultProviders().join(",")}, ${threads()} threads; ${samples[0].length} timed steps after ${args.warmup} warm-up; peak RSS is the whole process (every graph)`,
  );
  const rows = runners.map((r, i) => {
    const s = median(samples[i]);
    const gfl = r.flops / s / 1e9;
    return [r.name, r.params, s, tokens / s, gfl, (100 * gfl) / mm, i === 0 ? peakRssMiB() : null, ratio(s, torchS)];
  });
  table(
    ["runner", "trainable", "s/step", "tokens/s", "GFLOP/s", "% of matmul", "peak RSS MiB", "time / torch"],
    [
      ...rows,
      [
        TORCH_BEST.name + " LoRA",
        torchInfo?.trainable_params ?? null,
        torchS,
        torchS && tokens / torchS,
        torchS && loraFlops && loraFlops / torchS / 1e9,
        torchS && loraFlops && (100 * loraFlops) / torchS / 1e9 / mm,
        torchInfo?.peak_rss_mib ?? null,
        1,
      ],
      ["ours fp32 matmul (8-chain)", null, null, null, mm, 100, null, null],
    ],
  );
  emitJson("step-llm", {
    seq: T,
    batch: B,
    shape: shapeName,
    base_dtype: baseDtype,
    layers: args.layers ?? shape.num_hidden_layers,
    checkpoint: checkpointActivations,
    loss_chunk: lossChunk ?? null,
    runners: rows.map((r) => ({
      name: r[0],
      trainable: r[1],
      s: r[2],
      tokens_per_s: r[3],
      gflops: r[4],
      matmul_fraction: (r[5] as number) / 100,
      time_ratio: r[7],
    })),
    torch_s: torchS,
    torch_peak_rss_mib: torchInfo?.peak_rss_mib ?? null,
    peak_rss_mib: peakRssMiB(),
    matmul_gflops: mm,
    note: depthNote || null,
  });
  for (const r of runners) r.dispose();
}
