/**
 * Causal-LM records and their tokens, with no file access (the browser build uses them): JSONL
 * records with `text` (every token trained), `prompt` + `completion` (loss on the completion
 * only) or `messages` (rendered with the tokenizer's chat_template; loss on assistant turns
 * only), or plain texts (one token stream cut into blocks). Each example becomes token ids and
 * labels, −100 where no loss is taken. lm-data.ts reads them from files.
 */
import { ChatTemplateError, ConfigError, DataError } from "../errors.ts";
import { Rng } from "../tensor/random.ts";
import type { TextTokenizer } from "./text-tokenizer.ts";

/** One turn of a conversation, as chat templates take it. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** One causal-LM example as read: plain text, a prompt and its completion, or a chat. */
export type LmRecord = { kind: "text"; text: string } | { kind: "completion"; prompt: string; completion: string } | { kind: "chat"; messages: ChatMessage[] };

/** A soft target over classes given by its nonzero entries: their ids and weights. */
export interface SparseTarget {
  ids: ArrayLike<number>;
  weights: ArrayLike<number>;
}

/** One tokenised example: `labels[t]` is `ids[t]` where position t is trained, else −100 (HF's convention before the shift). */
export interface LmExample {
  ids: number[];
  labels: number[];
  /** A soft target the task trains on besides the labels (the masked LM's summary at <s>). */
  target?: SparseTarget;
}

const IGNORE = -100;

/** JSONL records from lines (of a file, an upload); a line without one of the three shapes names `source`, the line and the keys it needs. */
export function lmRecordsOf(lines: Iterable<string>, source: string): LmRecord[] {
  const out: LmRecord[] = [];
  let i = 0;
  for (const line of lines) {
    i++;
    if (!line.trim()) continue;
    const where = `${source}:${i}`;
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
  if (!out.length) throw new DataError(`${source} holds no records; write one JSON object a line with "text", "prompt" and "completion", or "messages"`);
  return out;
}
/** A chat template compiled from its source; `where` names the file it came from in messages. */
export type ChatTemplates = (source: string, where: string) => { render(context: Record<string, unknown>): string };

/** A tokenizer with the special tokens chat templates read, from the parsed tokenizer files. */
export class LmTokens {
  readonly #config: Record<string, unknown>;
  #template?: { render(context: Record<string, unknown>): string };
  readonly eosId: number | null;

  /**
   * `config` is tokenizer_config.json's object and `where` names it in messages; `templates`
   * compiles chat templates (absent: "messages" records are refused).
   */
  constructor(
    readonly tok: TextTokenizer,
    config: Record<string, unknown>,
    readonly where: string,
    readonly templates?: ChatTemplates,
  ) {
    this.#config = config;
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

  /** The chat template rendered, with the special tokens templates expect. */
  renderChat(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    const source = this.#config.chat_template;
    if (typeof source !== "string") {
      throw new ConfigError(
        `${this.where} has no "chat_template", so "messages" data cannot be rendered; add a chat_template or use "prompt"/"completion" records`,
      );
    }
    if (!this.templates)
      throw new ConfigError(`"messages" records are rendered by the command line's template sandbox; here use "text" or "prompt"/"completion" records`);
    this.#template ??= this.templates(source, this.where);
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
export function tokenizeRecord(t: LmTokens, r: LmRecord): LmExample {
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
    throw new ChatTemplateError(`the chat_template of ${t.where} renders nothing for these ${r.messages.length} messages; check that it loops over "messages"`);
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
export function buildLmExamples(t: LmTokens, data: { records?: LmRecord[]; texts?: string[] }, o: LmBuildOptions, source: string): LmExamples {
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

/** The share of the examples held out for evaluation when no evaluation file is given. */
const EVAL_FRACTION = 0.1;

/** A seeded 10 % of the examples (at least one) held out for evaluation, the rest to train on; `source` and `remedy` complete the error. */
export function holdOut(examples: LmExample[], seed: number, source: string, remedy = "or pass --eval-data"): { train: LmExample[]; test: LmExample[] } {
  if (examples.length < 2) throw new ConfigError(`${source} gives ${examples.length} example; a held-out split needs at least 2, ${remedy}`);
  const order = new Rng(seed ^ 0x1e57).permutation(examples.length);
  const nTest = Math.max(1, Math.round(EVAL_FRACTION * examples.length));
  return { test: Array.from(order.subarray(0, nTest), (i) => examples[i]), train: Array.from(order.subarray(nTest), (i) => examples[i]) };
}

/** The id rows are padded with: the tokenizer's pad token, else the config's, else EOS. */
export function padIdOf(t: LmTokens, config: { padTokenId?: number; eosTokenId?: number }): number {
  return t.tok.padId ?? config.padTokenId ?? t.eosId ?? config.eosTokenId ?? 0;
}
