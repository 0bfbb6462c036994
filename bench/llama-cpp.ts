/**
 * llama.cpp as a generation peer, through node-llama-cpp's prebuilt binary: a model exported to
 * GGUF by `tenslora export --to gguf`'s writer, greedy decoding of B prompts as B sequences of one
 * context (node-llama-cpp batches the sequences' pending tokens into one decode call).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { type GgufOutType, writeModelGguf } from "../src/experiments/gguf-export.ts";
import type { LoadedModel } from "../src/models/load.ts";

/** GPT-2's byte alphabet as a BPE vocabulary without merges: enough tokenizer for llama.cpp to load a random-weight model. */
function byteLevelTokenizer(dir: string): void {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  const chars = Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : next++));
  const tokenizer = {
    model: { type: "BPE", byte_fallback: false, vocab: Object.fromEntries(chars.map((c, i) => [c, i])), merges: [] },
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    added_tokens: [],
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
}

export interface LlamaCppPeer {
  /** Greedy tokens of each prompt (B = prompts.length ≤ the peer's sequences); seconds including the prompts. */
  generate(prompts: number[][], newTokens: number): Promise<{ seconds: number; tokens: number[][] }>;
  dispose(): Promise<void>;
}

/** Write `model` as `outType` GGUF in `dir` and load it into llama.cpp with `sequences` parallel sequences. */
export async function llamaCppPeer(
  model: LoadedModel,
  dir: string,
  outType: GgufOutType,
  o: { sequences: number; tokens: number; threads: number },
): Promise<LlamaCppPeer> {
  byteLevelTokenizer(dir);
  const file = join(dir, `model-${outType}.gguf`);
  writeModelGguf(file, { ...model, dir }, model.weights, outType);
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const m: LlamaModel = await llama.loadModel({ modelPath: file });
  const ctx: LlamaContext = await m.createContext({
    sequences: o.sequences,
    contextSize: o.sequences * o.tokens,
    batchSize: Math.min(2048, o.sequences * o.tokens),
    threads: o.threads,
  });
  const seqs: LlamaContextSequence[] = Array.from({ length: o.sequences }, () => ctx.getSequence());
  return {
    async generate(prompts, newTokens) {
      for (const s of seqs) await s.clearHistory();
      const t0 = process.hrtime.bigint();
      const tokens = await Promise.all(
        prompts.map(async (p, r) => {
          const out: number[] = [];
          for await (const t of seqs[r].evaluate(p as Token[], { temperature: 0 })) {
            out.push(t);
            if (out.length === newTokens) break;
          }
          return out;
        }),
      );
      return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, tokens };
    },
    async dispose() {
      await ctx.dispose();
      await m.dispose();
      await llama.dispose();
    },
  };
}
