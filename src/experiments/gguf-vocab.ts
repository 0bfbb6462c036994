/**
 * A HuggingFace tokenizer (tokenizer.json, tokenizer_config.json) as the `tokenizer.*` metadata
 * llama.cpp reads: the tokens by id (ids the tokenizer lacks up to the model's vocab_size as
 * `[PADn]`, unused) and their types (special or `<|…|>` added tokens control, other added
 * tokens user-defined). Byte-level BPE (GPT-2, SmolLM, Qwen2, Llama 3 tokenizers) becomes llama.cpp's
 * "gpt2" vocabulary with the merges and the pre-tokenizer named by llama.cpp's table (recognised
 * from the tokenizer's own pre-tokenizer: its split regex, or GPT-2's / SmolLM's digit rule).
 * SentencePiece-style BPE with byte fallback (Llama 2, Mistral 7B) becomes the "llama" vocabulary
 * with scores and byte/unknown token types (gguf-vocab-spm.ts). Special ids come from
 * tokenizer_config.json's token strings, then config.json's ids; add_bos_token from
 * tokenizer_config.json, else the post-processor's template, else left to llama.cpp's default for
 * the pre-tokenizer (as convert_hf_to_gguf.py leaves it); the chat template rides along
 * as `tokenizer.chat_template`. Any other tokenizer is refused with the reason: llama.cpp would
 * tokenise text differently from the model's own tokenizer.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { type GgufValue, gguf } from "../io/gguf-writer.ts";
import { checkByteTokens, checkMergesComplete, isByteToken, isSentencePieceBpe, mergeScores, spaceHandling } from "./gguf-vocab-spm.ts";

/** llama.cpp token types (llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

type Json = Record<string, unknown>;

const describe = (p: unknown) => JSON.stringify(p).slice(0, 160);

/** llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer's pre_tokenizer, or undefined. */
export function preTokenizerName(pre: unknown): string | undefined {
  const p = (pre ?? {}) as Json;
  const steps = (p.type === "Sequence" ? (p.pretokenizers as Json[]) : [p]) ?? [];
  const kinds = steps.map((s) => s.type);
  const byteLevel = steps.at(-1)?.type === "ByteLevel" ? steps.at(-1)! : undefined;
  if (!byteLevel) return undefined;
  if (steps.length === 1 && byteLevel.use_regex !== false) return "gpt-2";
  if (kinds.join() === "Digits,ByteLevel" && steps[0].individual_digits === true && byteLevel.use_regex !== false) return "smollm";
  if (kinds.join() === "Split,ByteLevel" && byteLevel.use_regex === false) {
    const regex = (steps[0].pattern as Json | undefined)?.Regex;
    if (regex === QWEN2_SPLIT) return "qwen2";
    if (regex === LLAMA3_SPLIT) return "llama-bpe";
  }
  return undefined;
}

/**
 * Whether a post-processor's single-sequence template starts with a special token (Llama 3.1
 * prepends BOS this way); undefined without a template, where llama.cpp's default for the
 * pre-tokenizer is right (Llama 3's first tokenizer.json has none, yet the model wants BOS).
 */
function templateAddsBos(post: unknown): boolean | undefined {
  const p = (post ?? {}) as Json;
  if (p.type === "Sequence") return ((p.processors ?? []) as Json[]).map(templateAddsBos).find((b) => b !== undefined);
  if (p.type !== "TemplateProcessing") return undefined;
  return Array.isArray(p.single) && (p.single[0] as Json | undefined)?.SpecialToken !== undefined;
}

/**
 * Added tokens llama.cpp wants as control tokens although the tokenizer does not mark them
 * special (Qwen's `<|fim_prefix|>`…): `<|…|>` names, else llama.cpp warns that a
 * control-looking token was not control-type and overrides it.
 */
const looksSpecial = (t: string) => t.startsWith("<|") && t.endsWith("|>");

const tokenContent = (v: unknown): string | undefined =>
  typeof v === "string" ? v : v && typeof v === "object" && typeof (v as Json).content === "string" ? ((v as Json).content as string) : undefined;

/** `tokenizer.*` metadata for the tokenizer in `modelDir`, padded to `vocabSize` tokens. */
export function tokenizerMetadata(modelDir: string, vocabSize: number, rawConfig: Json): Map<string, GgufValue> {
  const path = join(modelDir, "tokenizer.json");
  if (!existsSync(path))
    throw new ConfigError(`${modelDir} has no tokenizer.json; llama.cpp needs the model's vocabulary in the GGUF: add the tokenizer files to the model folder`);
  const tok = readJsonFile(path, "tokenizer") as Json;
  const cfgPath = join(modelDir, "tokenizer_config.json");
  const tcfg = (existsSync(cfgPath) ? readJsonFile(cfgPath, "tokenizer config") : {}) as Json;
  const model = (tok.model ?? {}) as Json;
  const spm = isSentencePieceBpe(tok);
  const pre = spm ? "default" : preTokenizerName(tok.pre_tokenizer);
  if (model.type !== "BPE" || !pre) {
    throw new ConfigError(
      `${path}: a ${String(model.type)} tokenizer${model.byte_fallback ? " with byte fallback" : ""} (pre-tokenizer ${describe(tok.pre_tokenizer)}) has no llama.cpp equivalent this export writes; ` +
        `supported: byte-level BPE with the GPT-2, SmolLM, Qwen2 or Llama 3 pre-tokenizer, and SentencePiece-style BPE with byte fallback. Export the merged safetensors (tenslora merge) and convert them with llama.cpp's convert_hf_to_gguf.py`,
    );
  }
  const vocab = model.vocab as Record<string, number>;
  const added = (tok.added_tokens ?? []) as { id: number; content: string; special?: boolean }[];
  const rawMerges = (model.merges ?? []) as (string | string[])[];
  const tokens: string[] = new Array(vocabSize);
  const types = new Int32Array(vocabSize);
  for (const [t, id] of Object.entries(vocab)) {
    if (id < vocabSize) {
      tokens[id] = t;
      types[id] = spm && isByteToken(t) ? TOKEN_TYPE.byte : spm && t === model.unk_token ? TOKEN_TYPE.unknown : TOKEN_TYPE.normal;
    }
  }
  for (const a of added) {
    if (a.id >= vocabSize) throw new ConfigError(`${path}: added token ${JSON.stringify(a.content)} has id ${a.id}, past the model's vocab_size ${vocabSize}`);
    if (types[a.id] === TOKEN_TYPE.unknown || types[a.id] === TOKEN_TYPE.byte) continue;
    // llama.cpp matches user-defined tokens in the raw text, before spaces become "▁"
    const control = a.special === true || looksSpecial(a.content);
    tokens[a.id] = spm && !control ? a.content.replaceAll("▁", " ") : a.content;
    types[a.id] = control ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.unused;
    }
  }
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const meta = new Map<string, GgufValue>([
    ["tokenizer.ggml.model", gguf.str(spm ? "llama" : "gpt2")],
    ["tokenizer.ggml.pre", gguf.str(pre)],
    ["tokenizer.ggml.tokens", gguf.strings(tokens)],
    ["tokenizer.ggml.token_type", gguf.i32s(types)],
  ]);
  if (spm) {
    checkByteTokens(vocab, path);
    const addedIds = new Set(added.map((a) => a.id));
    checkMergesComplete(vocab, rawMerges, (p) => isByteToken(p) || addedIds.has(vocab[p]), path);
    const { score } = mergeScores(rawMerges);
    meta.set("tokenizer.ggml.scores", gguf.f32s(Float32Array.from(tokens, (t, i) => (types[i] === TOKEN_TYPE.normal ? score(t) : -rawMerges.length))));
    meta.set("tokenizer.ggml.add_space_prefix", gguf.bool(spaceHandling(tok, path).addSpacePrefix));
  } else {
    meta.set("tokenizer.ggml.merges", gguf.strings(rawMerges.map((m) => (Array.isArray(m) ? m.join(" ") : m))));
  }
  const special = (name: string, configKey: string) => {
    const fromTokenizer = tokenContent(tcfg[`${name}_token`]);
    const id = fromTokenizer !== undefined ? ids.get(fromTokenizer) : undefined;
    const fromConfig = rawConfig[configKey];
    const v = id ?? (typeof fromConfig === "number" ? fromConfig : Array.isArray(fromConfig) && typeof fromConfig[0] === "number" ? fromConfig[0] : undefined);
    if (v !== undefined) meta.set(`tokenizer.ggml.${name === "unk" ? "unknown" : name === "pad" ? "padding" : name}_token_id`, gguf.u32(v));
  };
  special("bos", "bos_token_id");
  special("eos", "eos_token_id");
  special("unk", "unk_token_id");
  special("pad", "pad_token_id");
  const addBos = typeof tcfg.add_bos_token === "boolean" ? tcfg.add_bos_token : templateAddsBos(tok.post_processor);
  if (addBos !== undefined) meta.set("tokenizer.ggml.add_bos_token", gguf.bool(addBos));
  if (typeof tcfg.add_eos_token === "boolean") meta.set("tokenizer.ggml.add_eos_token", gguf.bool(tcfg.add_eos_token));
  const template = tcfg.chat_template;
  const chat = Array.isArray(template) ? (template as { name: string; template: string }[]).find((t) => t.name === "default")?.template : template;
  if (typeof chat === "string") meta.set("tokenizer.chat_template", gguf.str(chat));
  return meta;
}
