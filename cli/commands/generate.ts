/**
 * `tenslora generate`: continue a prompt (or a chat) with a decoder LM, with an adapter applied,
 * streaming the text to stdout as it is decoded. Greedy unless a sampling option is given.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { baseDtypeOf } from "../options.ts";
import { type ChatMessage, ConfigError, Generator, LmTokenizer, chatPrompt, generateText, loadTrainedModel, nodeRuntime } from "../../src/index.ts";

const num = (flag: string, v: unknown, check: (n: number) => boolean, range: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!check(n)) throw new ConfigError(`${flag} must be ${range}, got "${v}"`);
  return n;
};
const int = (flag: string, v: unknown, min: number) => num(flag, v, (n) => Number.isInteger(n) && n >= min, `an integer ≥ ${min}`);

/** A JSON file holding [{role, content}, …] or {"messages": [...]}. */
function readMessages(path: string): ChatMessage[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(`--messages ${path}: ${(e as Error).message}; pass a JSON file with [{"role": "user", "content": "…"}, …]`);
  }
  const list = Array.isArray(raw) ? raw : (raw as { messages?: unknown })?.messages;
  const ok = Array.isArray(list) && list.length > 0 && list.every((m) => typeof m?.role === "string" && typeof m?.content === "string");
  if (!ok) throw new ConfigError(`--messages ${path} must hold a non-empty list of {"role": …, "content": …} (or {"messages": [...]})`);
  return list as ChatMessage[];
}

export function register(program: Command): void {
  program
    .command("generate")
    .description("continue prompts or a chat with a decoder LM (with an adapter), streaming text to stdout")
    .requiredOption("--model <dir>", "HuggingFace decoder folder (llama, mistral, qwen2) with tokenizer.json")
    .option("--adapter <dir>", "PEFT LoRA or TensLoRA adapter folder, or a full model folder (e.g. RUN_DIR/best)")
    .option("--prompt <texts...>", "prompt texts (several: a left-padded batch, printed one per line at the end)")
    .option("--messages <file>", "JSON chat [{role, content}, …], rendered with the tokenizer's chat_template")
    .option("--max-new-tokens <n>", "new tokens at most", "32")
    .option("--sample", "sample instead of greedy decoding (implied by --temperature, --top-k, --top-p)")
    .option("--temperature <t>", "sampling temperature (0: greedy)")
    .option("--top-k <k>", "sample among the k most likely tokens")
    .option("--top-p <p>", "sample among the most likely tokens whose probability reaches p")
    .option("--repetition-penalty <r>", "> 1 discourages repeating prompt and output tokens", "1")
    .option("--seed <n>", "sampling seed (the same seed repeats a run)", "0")
    .option("--stop <strings...>", "stop a row at any of these strings")
    .option("--no-cache", "recompute the whole sequence every step instead of reusing keys and values")
    .option("--threads <n>", "ONNX Runtime intra-op threads (default: all cores)")
    .option("--base-dtype <dtype>", "f32 | f16 | int8 | int4: hold the frozen linear weights of a decoder in float16, or in 8 or 4 bits")
    .option("--json", "one JSON object per prompt at the end: prompt, text")
    .action(async (opts: Record<string, unknown>) => {
      if ((opts.prompt === undefined) === (opts.messages === undefined))
        throw new ConfigError("generate takes exactly one of --prompt TEXT… or --messages FILE");
      const temperature = num("--temperature", opts.temperature, (n) => Number.isFinite(n) && n >= 0, "a number ≥ 0");
      const topK = int("--top-k", opts.topK, 1);
      const topP = num("--top-p", opts.topP, (n) => n > 0 && n <= 1, "in (0, 1]");
      const sampling = {
        doSample: Boolean(opts.sample) || temperature !== undefined || topK !== undefined || topP !== undefined,
        temperature,
        topK,
        topP,
        repetitionPenalty: num("--repetition-penalty", opts.repetitionPenalty, (n) => Number.isFinite(n) && n > 0, "a number > 0"),
        seed: int("--seed", opts.seed, 0),
      };
      const tm = loadTrainedModel(String(opts.model), opts.adapter as string | undefined, { baseDtype: baseDtypeOf(opts) });
      const tok = new LmTokenizer(String(opts.model));
      const prompts = opts.messages !== undefined ? [chatPrompt(tok, readMessages(String(opts.messages)))] : (opts.prompt as string[]);
      const gen = await Generator.create(tm.model, tm.adapter, { runtime: nodeRuntime, threads: int("--threads", opts.threads, 1) });
      try {
        const stream = prompts.length === 1 && !opts.json;
        const texts = prompts.map(() => "");
        const deltas = generateText(gen, tok, prompts, {
          ...sampling,
          maxNewTokens: int("--max-new-tokens", opts.maxNewTokens, 1),
          stopStrings: opts.stop as string[] | undefined,
          cache: opts.cache !== false,
        });
        for await (const d of deltas) {
          texts[d.row] += d.text;
          if (stream) process.stdout.write(d.text);
        }
        if (stream) process.stdout.write("\n");
        else if (opts.json) prompts.forEach((p, i) => console.log(JSON.stringify({ prompt: p, text: texts[i] })));
        else texts.forEach((t) => console.log(t));
      } finally {
        gen.dispose();
      }
    });
}
