/**
 * llama.cpp through node-llama-cpp's prebuilt binary for the GGUF tests: one runtime whose
 * warnings are collected, greedy continuation of prompt ids, and the tokens it gives texts; and
 * our own greedy tokens from the same weights, to compare with.
 */
import { type Llama, type LlamaModel, LlamaLogLevel, type Token, getLlama } from "node-llama-cpp";
import { Generator } from "../src/generate/generate.ts";
import type { LoadedModel } from "../src/models/load.ts";
import type { WeightMap } from "../src/nn/params.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

/** llama.cpp's warnings since the last `logs.length = 0`. */
export const logs: string[] = [];
export const llama: Llama | Error = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.warn,
  logger: (level: LlamaLogLevel, message: string) => logs.push(`${level}: ${message}`),
}).catch((e: Error) => e);
export const skip = llama instanceof Error ? `node-llama-cpp's prebuilt llama.cpp does not load here: ${llama.message.split("\n")[0]}` : false;

/** The warning every tiny model gives: llama.cpp contexts are at least 256 tokens, the tiny models were configured with 64 positions. */
export const CONTEXT_WARNING = /n_ctx_seq \(\d+\) > n_ctx_train \(64\)/;
export const warnings = (): string[] => logs.filter((l) => !CONTEXT_WARNING.test(l));

/** llama.cpp's `n` greedy tokens after `prompt` from `file` (with a LoRA `adapter`), and what `inspect` reads from the loaded model. */
export async function llamaCppGreedy<T = undefined>(
  file: string,
  prompt: readonly number[],
  n: number,
  o: { adapter?: string; inspect?: (model: LlamaModel) => T } = {},
): Promise<{ tokens: number[]; inspected: T }> {
  const model = await (llama as Llama).loadModel({ modelPath: file });
  const ctx = await model.createContext({ contextSize: 256, threads: 1, ...(o.adapter ? { lora: { adapters: [{ filePath: o.adapter }] } } : {}) });
  try {
    const tokens: number[] = [];
    for await (const t of ctx.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
      tokens.push(t);
      if (tokens.length === n) break;
    }
    return { tokens, inspected: o.inspect?.(model) as T };
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

/** Our `n` greedy tokens after `prompt` with `weights` on `model`. */
export async function ourGreedy(model: LoadedModel, weights: WeightMap, prompt: readonly number[], n: number): Promise<number[]> {
  const gen = await Generator.create({ ...model, weights }, undefined, { runtime: nodeRuntime, threads: 1 });
  const ours: number[] = [];
  try {
    for await (const step of gen.tokens([[...prompt]], { maxNewTokens: n, eosTokenIds: [] })) ours.push(step[0]!);
  } finally {
    gen.dispose();
  }
  return ours;
}
