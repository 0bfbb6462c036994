/** Flags shared by `train` and `compare`, mapped 1:1 onto RunConfig keys (commander camel-cases them). */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { type Command, Option } from "commander";
import {
  type BaseDType,
  DEFAULTS,
  FACTORIZATIONS,
  type RunConfig,
  applyConfig,
  embeddedOverrides,
  loadConfigFile,
  parseTargetModules,
  parseBaseDType,
} from "../src/index.ts";

const RUN_FLAGS: [flag: string, help: string][] = [
  [
    "--model <dir>",
    "HuggingFace model folder (default: the embedded MNIST ViT; with --task causal-lm the embedded Brown-corpus decoder; with --task text-classification the embedded Brown-pretrained encoder)",
  ],
  ["--data <path>", "data folder, table file, or 'mnist'"],
  ["--dataset <name>", "with --task text-classification and no --model: the embedded benchmark's data, sentiment | spam (default sentiment)"],
  ["--data-format <format>", "imagefolder | dtd | cifar10 | mnist | glue-cola | glue-sst2 | glue-mrpc | table | tagged (default: detected)"],
  ["--eval-data <file>", "test file for --data-format table or tagged"],
  ["--text-column <name>", "table column holding the text"],
  ["--text-pair-column <name>", "table column holding the second text of a pair"],
  ["--label-column <name>", "table column holding the label"],
  ["--num-labels <n>", "classification: the head's class count; integer labels lie in 0..N-1 and need not all occur (default: from the data)"],
  ["--construction <name>", "lora | att | qkv | depth | att_qkv | att_depth | qkv_depth | att_qkv_depth | head | full"],
  ["--ranks <list>", "per-mode ranks, e.g. 8,8,3,12"],
  ["--budget <n>", "parameter budget; ranks from the rank solver"],
  ["--iso-lora <r>", "budget of LoRA rank r (default 8)"],
  ["--rank-slack <fraction>", "rank solver: the most balanced ranks within this fraction below the budget (default 0.01)"],
  ["--factorization <f>", Object.keys(FACTORIZATIONS).join(" | ")],
  ["--head-layout <layout>", "head_major | interleaved (the official code's unfold)"],
  [
    "--target-modules <list>",
    "adapted linear layers: names, all-linear or /regex/ (default: q, k, v by the model's names: query,key,value or q_proj,k_proj,v_proj)",
  ],
  ["--layers-to-transform <list>", "only these blocks, e.g. 0,1,2 (default: all)"],
  ["--preset <name>", "a published method instead of --construction: lorta | lotr | fact_tk | fact_tt"],
  ["--gqa <mode>", "grouped-query attention: mean (K/V share Q's stack, default) | separate"],
  ["--scaling <s>", "update scaling (LoRA: alpha / r)"],
  ["--lr <lr>", "AdamW learning rate (default 5e-4)"],
  ["--weight-decay <wd>", "decoupled weight decay (default 0.01)"],
  ["--epochs <n>", "epochs (default 10)"],
  ["--batch-size <n>", "batch size (default 64)"],
  ["--warmup <fraction>", "warm-up fraction of the steps (default 0 for images, 0.1 for text)"],
  ["--min-lr <lr>", "cosine floor (default 1e-6)"],
  ["--seed <n>", "seed of data order, init and head"],
  ["--eval-every <steps>", "evaluate every N steps (default: every epoch)"],
  ["--save-every <steps>", "checkpoint every N steps (default: every epoch)"],
  ["--max-grad-norm <n>", "clip the gradient norm (default: off)"],
  [
    "--metric <name>",
    "classification: accuracy | mcc | macro_f1 | binary_f1; token classification: accuracy | f1; causal LM: perplexity | loss | next_token_accuracy (best adapter selection; default the first)",
  ],
  ["--max-length <n>", "text: truncate to N tokens (default 512)"],
  [
    "--task <name>",
    "image-classification | text-classification | token-classification | causal-lm (default: from the model's architecture, or token-classification for tagged words; token-classification without --data: the Brown POS benchmark)",
  ],
  ["--dropout <p>", "hidden and attention dropout while training (default 0)"],
  ["--threads <n>", "ONNX Runtime intra-op threads (default: all cores)"],
  ["--val-fraction <f>", "training data held out per class to pick the best evaluation (default 0.1; 0 = pick on test, as the paper)"],
  ["--core-lr-scale <x>", "learning-rate multiplier of the Tucker cores and LoRA B, TensLoRA+/LoRA+ style (default 1)"],
  [
    "--base-dtype <dtype>",
    "f32 | f16 | int8 | int4: hold the frozen linear weights of a decoder in float16, or in 8 or 4 bits block-wise (QLoRA); default f32",
  ],
  [
    "--loss-chunk <n>",
    "causal LM: logits and loss N positions at a time (0 = whole; default: in 32 MiB chunks when batch × sequence × vocabulary exceeds 2^25)",
  ],
];

export function addRunOptions(cmd: Command): Command {
  for (const [flag, help] of RUN_FLAGS) cmd.addOption(new Option(flag, help));
  cmd.option("--augment", "train-time flip and colour jitter for images");
  cmd.option("--no-truncation", "causal LM: an example longer than --max-length is an error instead of being cut");
  cmd.option("--packing", "causal LM: pack short examples into rows of --max-length tokens");
  cmd.option("--checkpoint-activations", "recompute each layer's activations in the backward pass instead of keeping them (less memory, more time)");
  cmd.option("--config <file>", "JSON file of settings (keys as the flags, camelCase); flags override it");
  return cmd;
}

/** The --base-dtype a command was given, else the run's (RUN_DIR/config.json), else f32. */
export function baseDtypeOf(opts: Record<string, unknown>, run: Record<string, unknown> = {}): BaseDType {
  return parseBaseDType(String(opts.baseDtype ?? run.baseDtype ?? "f32"));
}

/** The config.json of the run that saved `adapterDir` (RUN_DIR/best → RUN_DIR/config.json), or {} when there is none. */
export function runConfigBeside(adapterDir: string): Record<string, unknown> {
  const path = join(dirname(resolve(adapterDir)), "config.json");
  if (!existsSync(path)) return {};
  try {
    const raw = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return typeof raw === "object" && raw !== null && !Array.isArray(raw) && "construction" in raw ? (raw as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** defaults ← embedded overrides (no --model) ← config file (or a resumed run's saved config) ← flags. */
export function resolveRunConfig(opts: Record<string, unknown>, saved: Record<string, unknown> = {}): RunConfig {
  const file = typeof opts.config === "string" ? loadConfigFile(opts.config) : saved;
  const flags = Object.fromEntries(Object.entries(opts).filter(([k]) => k in DEFAULTS));
  // "" is the config's "default targets"; typed as a flag it is a mistake, not a request for the default
  if (typeof flags.targetModules === "string") parseTargetModules(flags.targetModules);
  const embedded = !(flags.model ?? file.model);
  const base = embedded ? applyConfig(DEFAULTS, embeddedOverrides(String(flags.task ?? file.task ?? "")), "embedded defaults") : DEFAULTS;
  return applyConfig(applyConfig(base, file, String(opts.config ?? "config")), flags, "flags");
}
