/**
 * `tenslora infer`: the parity command. With --inputs, HF-named model inputs from a safetensors
 * file in, `logits` and `last_hidden_state` (F32) out, to compare with PyTorch. With --images or
 * --text, the predicted labels and their probabilities (id2label from the config or the run); a
 * token classifier's logits are [B, T, labels], and --text prints a tag per token.
 */
import type { Command } from "commander";
import { baseDtypeOf } from "../options.ts";
import {
  ConfigError,
  type HostTensor,
  type InferenceOutputs,
  imageInputs,
  loadTrainedModel,
  predictions,
  readModelInputs,
  runInference,
  textArg,
  textInputs,
  tokenTags,
  writeOutputs,
  nodeRuntime,
} from "../../src/index.ts";

const positiveInt = (flag: string, v: unknown): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer, got "${v}"`);
  return n;
};

export function register(program: Command): void {
  program
    .command("infer")
    .description("run a model (with an adapter) on inputs by HuggingFace names, images or text; write logits or print labels")
    .requiredOption("--model <dir>", "HuggingFace model folder")
    .option("--adapter <dir>", "PEFT LoRA or TensLoRA adapter folder, a head folder or a full model folder (e.g. RUN_DIR/best)")
    .option("--inputs <file>", "safetensors with pixel_values, or input_ids + attention_mask [+ token_type_ids, fed where the model has token types]")
    .option("--output <file>", "write logits and last_hidden_state (F32) to this safetensors file")
    .option("--images <files...>", "image files: print the predicted labels")
    .option("--text <texts...>", "texts (or @file): print the predicted labels")
    .option("--text-pair <texts...>", "second texts of sentence pairs, one per --text")
    .option("--max-length <n>", "text: truncate to N tokens (default: the tokenizer's limit)")
    .option("--top <k>", "labels shown per input", "5")
    .option("--threads <n>", "ONNX Runtime intra-op threads (default: all cores)")
    .option("--base-dtype <dtype>", "f32 | f16 | int8 | int4: hold the frozen linear weights of a decoder in float16, or in 8 or 4 bits")
    .option("--json", "one JSON object per input")
    .option("--allow-random-head", "print labels even when the classifier is missing from the model folder (it is then random)")
    .action(async (opts: Record<string, unknown>) => {
      const modes = ["inputs", "images", "text"].filter((k) => opts[k] !== undefined);
      if (modes.length !== 1) {
        throw new ConfigError(
          `infer takes exactly one of --inputs FILE, --images FILES… or --text TEXT…; got ${modes.length ? modes.map((m) => `--${m}`).join(" and ") : "none"}`,
        );
      }
      if (opts.inputs !== undefined && opts.output === undefined)
        throw new ConfigError(`--inputs needs --output OUT.safetensors (where logits and last_hidden_state go)`);
      if (opts.textPair !== undefined && opts.text === undefined) throw new ConfigError(`--text-pair needs --text`);
      const top = positiveInt("--top", opts.top)!;
      const threads = positiveInt("--threads", opts.threads);
      const tm = loadTrainedModel(String(opts.model), opts.adapter as string | undefined, { baseDtype: baseDtypeOf(opts) });
      if (tm.randomHead) {
        const why = `${opts.model} has no classifier of the right shape, so it was initialised at random`;
        if (opts.inputs === undefined && !opts.allowRandomHead)
          throw new ConfigError(
            `${why}: its labels would mean nothing; pass --adapter RUN_DIR/best (a trained head), or --allow-random-head to print them anyway`,
          );
        console.error(`tenslora: warning: ${why}`);
      }

      let inputs: Record<string, HostTensor>;
      let names: string[];
      if (opts.inputs !== undefined) {
        const read = readModelInputs(String(opts.inputs), tm.model);
        const ig = read.ignored;
        if (ig.length && !opts.json)
          console.error(`ignored ${ig.length} tensors in ${opts.inputs} that are no model inputs: ${ig.slice(0, 4).join(", ")}${ig.length > 4 ? ", …" : ""}`);
        inputs = read.inputs;
        names = Array.from({ length: (inputs.pixel_values ?? inputs.input_ids).shape[0] }, (_, i) => `row ${i}`);
      } else if (opts.images !== undefined) {
        names = opts.images as string[];
        inputs = await imageInputs(tm.model, names);
      } else {
        const texts = (opts.text as string[]).map(textArg);
        const pairs = (opts.textPair as string[] | undefined)?.map(textArg);
        names = texts.map((t, i) => (pairs ? `${t} | ${pairs[i]}` : t));
        inputs = textInputs(tm.model, texts, pairs, positiveInt("--max-length", opts.maxLength));
      }
      const out: InferenceOutputs = await runInference(tm, inputs, { runtime: nodeRuntime, threads });
      if (opts.output !== undefined) {
        writeOutputs(String(opts.output), out);
        if (!opts.json) console.error(`wrote logits [${out.logits.shape}] and last_hidden_state [${out.last_hidden_state.shape}] to ${opts.output}`);
      }
      if (opts.inputs !== undefined && !opts.json) return;
      if (out.logits.shape.length === 3) {
        // a token classifier: a tag per token
        tokenTags(tm.model, out.logits, inputs, tm.labels).forEach((tags, i) => {
          if (opts.json) console.log(JSON.stringify({ input: names[i], tokens: tags }));
          else console.log(`${names[i]}: ${tags.map((t) => `${t.token}/${t.label}`).join(" ")}`);
        });
        return;
      }
      predictions(out.logits, tm.labels).forEach((p, i) => {
        if (opts.json) console.log(JSON.stringify({ input: names[i], label: p.label, id: p.id, probabilities: p.probabilities }));
        else {
          const shown = p.probabilities.slice(0, top).map((c) => `${c.label} ${(100 * c.probability).toFixed(2)}%`);
          console.log(`${names[i]}: ${shown.join(", ")}`);
        }
      });
    });
}
