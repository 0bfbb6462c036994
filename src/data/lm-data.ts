/**
 * Causal-LM data: JSONL records with `text` (every token trained), `prompt` + `completion` (loss
 * on the completion only) or `messages` (rendered with the tokenizer's chat_template through
 * @huggingface/jinja; loss on assistant turns only), or plain text files (one token stream cut
 * into blocks). Each example becomes token ids and labels, −100 where no loss is taken.
 */
import { existsSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { ConfigError, DataError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { ChatTemplate, ChatTemplateError } from "./chat-template.ts";
import { readDir, readLines, readText } from "./files.ts";
import { TextTokenizer } from "./tokenize.ts";

/** One turn of a conversation, as chat templates take it. */
export interface ChatMessage {
  role: string;
  content: string;
}

export type LmRecord = { kind: "text"; text: string } | { kind: "completion"; prompt: string; completion: string } | { kind: "chat"; messages: ChatMessage[] };

/** One tokenised example: `labels[t]` is `ids[t]` where position t is trained, else −100 (HF's convention before the shift). */
export interface LmExample {
  ids: number[];
  labels: number[];
}

const IGNORE = -100;

/** JSONL records; a line without one of the three shapes names the file, the line and the keys it needs. */
export function readLmJsonl(path: string): LmRecord[] {
  const out: LmRecord[] = [];
  let i = 0;
  for (const line of readLines(path)) {
    i++;
    if (!line.trim()) continue;
    const where = `${path}:${i}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${where}: not valid JSON (${(e as Error).message}); each line must be one JSON object`);
    }
    const o = (typeof v === "object" && v !== null && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
    const fix = `each line needs "text", or "prompt" and "completion", or "messages" (a list of {role, content})`;
    if (typeof o.text === "string") out.push({ kind: "text", text: o.text });
    else if (typeof o.prompt === "string" && typeof o.completion === "string") out.push({ kind: "completion", prompt: o.prompt, completion: o.completion });
    else if (Array.isArray(o.messages)) {
      const bad = o.messages.findIndex((m) => typeof m?.role !== "string" || typeof m?.content !== "string");
      if (bad >= 0) throw new DataError(`${where}: messages[${bad}] must be {"role": string, "content": string}`);
      out.push({ kind: "chat", messages: o.messages as ChatMessage[] });
    } else {
      const keys = Object.keys(o);
      throw new DataError(`${where}: found ${keys.length ? `keys ${keys.map((k) => `"${k}"`).join(", ")}` : "no keys"}; ${fix}`);
    }
  }
  if (!out.length) throw new DataError(`${path} holds no records; write one JSON object a line with "text", "prompt" and "completion", or "messages"`);
  return out;
}

/** Plain text: one file, or every .txt file of a folder (sorted). */
export function readTextCorpus(path: string): string[] {
  if (!statSync(path).isDirectory()) return [readText(path)];
  const files = readDir(path)
    .filter((f) => f.endsWith(".txt"))
    .sort();
  if (!files.length) throw new DataError(`${path} holds no .txt files; give a .jsonl file, a .txt file or a folder of .txt files`);
  return files.map((f) => readText(join(path, f)));
}

/** Records from a path: .jsonl → records, anything else readable → plain text. */
export function readLmData(path: string): { records?: LmRecord[]; texts?: string[] } {
  if (!existsSync(path)) throw new DataError(`--data ${path} does not exist`);
  return extname(path) === ".jsonl" ? { records: readLmJsonl(path) } : { texts: readTextCorpus(path) };
}

/** The tokenizer and the special tokens chat templates read, from a model folder. */
export class LmTokenizer {
  readonly #config: Record<string, unknown>;
  #template?: ChatTemplate;
  readonly tok: TextTokenizer;
  readonly eosId: number | null;

  constructor(readonly dir: string) {
    if (!existsSync(join(dir, "tokenizer.json")))
      throw new ConfigError(`${dir} has no tokenizer.json; causal-LM training needs the tokenizer files of its HF folder`);
    const cfgPath = join(dir, "tokenizer_config.json");
    this.#config = existsSync(cfgPath) ? (readJsonFile(cfgPath, "tokenizer config") as Record<string, unknown>) : {};
    this.tok = TextTokenizer.fromDir(dir);
    const eos = this.#token("eos_token");
    this.eosId = eos === undefined ? null : (this.encode(eos)[0] ?? null);
  }

  #token(key: string): string | undefined {
    const v = this.#config[key] as string | { content?: string } | undefined;
    return typeof v === "object" ? v?.content : v;
  }

  /** Ids without truncation; `special` adds the post-processor's tokens (e.g. Llama's BOS). */
  encode(text: string, special = false): number[] {
    return this.tok.encode(text, undefined, { truncation: false, addSpecialTokens: special }).ids;
  }

  /** The chat template rendered (@huggingface/jinja, under the sandbox's limits), with the special tokens templates expect. */
  renderChat(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    const source = this.#config.chat_template;
    const where = join(this.dir, "tokenizer_config.json");
    if (typeof source !== "string") {
      throw new ConfigError(`${where} has no "chat_template", so "messages" data cannot be rendered; add a chat_template or use "prompt"/"completion" records`);
    }
    this.#template ??= new ChatTemplate(source, where);
    return this.#template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.#token("bos_token") ?? "",
      eos_token: this.#token("eos_token") ?? "",
      pad_token: this.#token("pad_token") ?? "",
      unk_token: this.#token("unk_token") ?? "",
    });
  }
}

/** Token ids and trained positions of one record. */
export function tokenizeRecord(t: LmTokenizer, r: LmRecord): LmExample {
  if (r.kind === "text") {
    const ids = t.encode(r.text, true);
    return { ids, labels: [...ids] };
  }
  if (r.kind === "completion") {
    const p = t.encode(r.prompt, true);
    const c = [...t.encode(r.completion), ...(t.eosId === null ? [] : [t.eosId])];
    return { ids: [...p, ...c], labels: [...p.map(() => IGNORE), ...c] };
  }
  // assistant turn i spans the tokens between the render of turns < i with the generation prompt and the render of turns ≤ i
  const ids = t.encode(t.renderChat(r.messages, false));
  if (!ids.length)
    throw new ChatTemplateError(`the chat_template of ${t.dir} renders nothing for these ${r.messages.length} messages; check that it loops over "messages"`);
  const labels = ids.map(() => IGNORE);
  r.messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    const start = t.encode(t.renderChat(r.messages.slice(0, i), true)).length;
    const end = t.encode(t.renderChat(r.messages.slice(0, i + 1), false)).length;
    for (let k = start; k < Math.min(end, ids.length); k++) labels[k] = ids[k];
  });
  return { ids, labels };
}

export interface LmBuildOptions {
  maxLength: number;
  /** Cut examples longer than maxLength (counted); false makes them an error. */
  truncation: boolean;
  /** Pack short examples into rows of up to maxLength tokens. */
  packing: boolean;
}

export interface LmExamples {
  examples: LmExample[];
  /** Examples cut to maxLength. */
  truncated: number;
}

/** Records or plain texts to examples of at most maxLength tokens. */
export function buildLmExamples(t: LmTokenizer, data: { records?: LmRecord[]; texts?: string[] }, o: LmBuildOptions, source: string): LmExamples {
  if (!(Number.isInteger(o.maxLength) && o.maxLength >= 2)) throw new ConfigError(`--max-length must be an integer ≥ 2, got ${o.maxLength}`);
  if (data.texts) {
    // a text corpus is one token stream (documents joined by EOS) cut into blocks, as HF's run_clm groups texts
    const stream = data.texts.flatMap((x) => [...t.encode(x, true), ...(t.eosId === null ? [] : [t.eosId])]);
    const examples: LmExample[] = [];
    for (let s = 0; s < stream.length; s += o.maxLength) {
      const ids = stream.slice(s, s + o.maxLength);
      if (ids.length >= 2) examples.push({ ids, labels: [...ids] });
    }
    return { examples, truncated: 0 };
  }
  let truncated = 0;
  const examples = data.records!.map((r, i) => {
    const where = `${source}: record ${i + 1}`;
    let e: LmExample;
    try {
      e = tokenizeRecord(t, r);
    } catch (err) {
      if (err instanceof ChatTemplateError) throw new ChatTemplateError(`${where}: ${err.message}`);
      throw err;
    }
    // the label at position 0 predicts nothing (labels shift by one), so a trained token must come after it
    if (!e.labels.slice(1).some((l) => l !== IGNORE))
      throw new DataError(
        `${where} has no token to train on (${r.kind === "chat" ? "no assistant turn with content" : r.kind === "completion" ? "an empty completion" : "a single token"}); give it one or remove the record`,
      );
    if (e.ids.length <= o.maxLength) return e;
    if (!o.truncation) {
      throw new DataError(
        `${source}: record ${i + 1} has ${e.ids.length} tokens, more than --max-length ${o.maxLength}; raise --max-length or turn truncation on (drop --no-truncation)`,
      );
    }
    truncated++;
    const cut = { ids: e.ids.slice(0, o.maxLength), labels: e.labels.slice(0, o.maxLength) };
    if (!cut.labels.slice(1).some((l) => l !== IGNORE))
      throw new DataError(`${where}: its trained tokens all lie past --max-length ${o.maxLength}; raise --max-length or shorten the record's prompt`);
    return cut;
  });
  return { examples: o.packing ? pack(examples, o.maxLength) : examples, truncated };
}

/** Greedy packing in order: examples are appended to a row while it has room (attention spans the row). */
function pack(examples: LmExample[], T: number): LmExample[] {
  const rows: LmExample[] = [];
  let cur: LmExample = { ids: [], labels: [] };
  for (const e of examples) {
    if (cur.ids.length + e.ids.length > T && cur.ids.length) {
      rows.push(cur);
      cur = { ids: [], labels: [] };
    }
    cur.ids.push(...e.ids);
    cur.labels.push(...e.labels);
  }
  if (cur.ids.length) rows.push(cur);
  return rows;
}
