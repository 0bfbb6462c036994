/** `npm run bench -- <name>`: run one benchmark; an unknown or missing name lists them. */
const BENCHES: Record<string, { about: string; load: () => Promise<{ run(args: string[]): Promise<void> }> }> = {
  matmul: { about: "fp32 2048x768·768x768 GFLOP/s, ours vs torch.mm", load: () => import("./matmul.ts") },
  block: { about: "one ViT-B block fwd+bwd with LoRA r=8 on q,k,v, vs PyTorch eager", load: () => import("./block.ts") },
  "step-vit": { about: "ViT-B/16 training step (224², batch 8, LoRA r=8 + head, AdamW)", load: () => import("./step.ts").then((m) => ({ run: m.runVit })) },
  "step-roberta": {
    about: "RoBERTa-base training step (seq 128, batch 16, LoRA r=8 + head, AdamW)",
    load: () => import("./step.ts").then((m) => ({ run: m.runRoberta })),
  },
  constructions: { about: "step time of each construction / LoRA's at the LoRA-r=8 budget", load: () => import("./constructions.ts") },
  merged: { about: "inference time of a merged model / the base model", load: () => import("./merged.ts") },
  web: { about: "embedded ViT training steps/s in Chromium (WebAssembly, WebGPU) / Node's CPU", load: () => import("./web.ts") },
  "step-llm": {
    about: "causal-LM step of a SmolLM2-135M-shaped decoder (batch 4, seq 512), LoRA r=16 and qkv_depth on all linear layers, vs PyTorch eager",
    load: () => import("./step-llm.ts"),
  },
  "load-quant": {
    about: "peak RSS of loading a decoder checkpoint: f32, f32 then int4/int8, int4/int8 while reading (one child each)",
    load: () => import("./load-quant.ts"),
  },
  "web-lm": {
    about: "decoder page in Chromium (WebAssembly): LoRA on an int4 base at the Llama-3.2-1B shape, load, step time and tab memory",
    load: () => import("./web-lm.ts"),
  },
  dims: { about: "inference with free batch/sequence dims vs the same graph at fixed sizes", load: () => import("./dims.ts") },
  generate: {
    about: "greedy generation tokens/s, SmolLM2-135M shape: ours f32 and q8 vs llama.cpp F32 and Q8_0 (interleaved), recomputation, PyTorch",
    load: () => import("./generate.ts"),
  },
  "quant-matmul": {
    about: "one frozen-weight product x·Ŵᵀ by rows of x: float32, int8 MatMulNBits, int8 dequantize + GEMM, int4 MatMulNBits",
    load: () => import("./quant-matmul.ts"),
  },
  sweep: { about: "2,000 dry-run jobs on Redis over 8 workers, 2 SIGKILLed midway: lost / twice / jobs/s", load: () => import("./sweep.ts") },
  "llm-adapter": { about: "adapter slices at decoder scale (d 4096, 32 layers) vs folding the full tensor", load: () => import("./llm-adapter.ts") },
};

const [name, ...rest] = process.argv.slice(2);
const entry = name ? BENCHES[name] : undefined;
if (!entry) {
  if (name) console.error(`unknown benchmark "${name}"`);
  console.error("usage: npm run bench -- <name> [options]\n\nbenchmarks:");
  for (const [k, v] of Object.entries(BENCHES)) console.error(`  ${k.padEnd(14)} ${v.about}`);
  process.exit(name ? 2 : 0);
}
await (await entry.load()).run(rest);
