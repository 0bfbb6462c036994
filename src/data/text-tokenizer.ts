/**
 * Tokenisation for sequence classification on top of `@huggingface/tokenizers` (which encodes
 * one text or pair but neither truncates, pads nor batches).
 *
 * Each text is tokenised without special tokens, truncated so that the result with the
 * post-processor's special tokens fits `maxLength` (pairs: longest first, as HF tokenizers'
 * Rust `truncate_encodings`), then passed through the tokenizer's own post-processor, so a
 * RoBERTa pair comes out as `<s> A </s></s> B </s>`. Padding is on the right. This module reads no
 * file (the browser build uses it); tokenize.ts adds `TextTokenizer.fromDir`.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { ConfigError, FormatError, TensLoRAError } from "../errors.ts";

/** Integer type of token ids: int64 for ONNX models, int32 where a runtime prefers it. */
export type IdDType = "int64" | "int32";
/** The typed array of token ids for an id dtype. */
export type IdArray<D extends IdDType> = D extends "int64" ? BigInt64Array : Int32Array;

/** Where to cut texts longer than the sequence length. */
export interface TruncationOptions {
  /** Longest output including special tokens; defaults to the tokenizer's model_max_length. */
  maxLength?: number;
  /** Cut inputs to `maxLength` (default true); false keeps every token. */
  truncation?: boolean;
  addSpecialTokens?: boolean;
}

/** How to tokenise a batch: length, truncation and the integer type of the ids. */
export interface BatchOptions<D extends IdDType> extends TruncationOptions {
  /** "longest": pad to the longest row of the batch (default); "max_length": always to maxLength. */
  padding?: "longest" | "max_length";
  /** ONNX models take int64 ids; int32 halves the copy where a graph accepts it. */
  dtype?: D;
}

/** Token ids and attention mask of a batch, row-major [batch, length]. */
export interface TokenIds {
  ids: number[];
  /** Segment ids from the post-processor (RoBERTa: 0 for A with its specials, 1 for B). */
  typeIds: number[];
}

/**
 * Row-major [B, T] arrays. RoBERTa has a single token type (type_vocab_size 1) and HF's
 * RobertaTokenizer does not return type ids: feed `tokenTypeIds` only to models that use them.
 */
export interface TokenBatch<A extends BigInt64Array | Int32Array> {
  inputIds: A;
  attentionMask: A;
  tokenTypeIds: A;
  shape: [number, number];
}

/** One example's text, or a pair of texts for sentence-pair tasks. */
export interface TextInput {
  text: string;
  textPair?: string;
}

/** HF writes `model_max_length: 1e30` when a tokenizer has no limit. */
const NO_LIMIT = 1e9;

/** A HuggingFace tokenizer (`tokenizer.json`) that encodes batches as a model's inputs. */
export class TextTokenizer {
  readonly #tok: Tokenizer;
  /** Id used for padding, from tokenizer_config `pad_token` or tokenizer.json `padding`. */
  readonly padId: number | null;
  readonly modelMaxLength: number | null;

  /** From parsed `tokenizer.json` and (optional) `tokenizer_config.json` objects. */
  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown> = {}) {
    if (typeof tokenizerJson !== "object" || tokenizerJson === null || Array.isArray(tokenizerJson))
      throw new FormatError(`tokenizer.json must hold a JSON object, found ${JSON.stringify(tokenizerJson)}; re-download the tokenizer files`);
    if (typeof tokenizerConfig !== "object" || tokenizerConfig === null || Array.isArray(tokenizerConfig))
      throw new FormatError(`tokenizer_config.json must hold a JSON object, found ${JSON.stringify(tokenizerConfig)}`);
    this.#tok = tokenizerCall("reading it", () => new Tokenizer(tokenizerJson, tokenizerConfig));
    const json = tokenizerJson as { padding?: { pad_id?: number }; truncation?: { max_length?: number } };
    // pad_token is a string, or an AddedToken object {content, …} in newer configs
    const padToken = tokenizerConfig.pad_token as string | { content?: string } | undefined;
    const padName = typeof padToken === "object" ? padToken?.content : padToken;
    const padFromConfig = typeof padName === "string" ? tokenizerCall("looking up pad_token", () => this.#tok.token_to_id(padName)) : undefined;
    this.padId = padFromConfig ?? json.padding?.pad_id ?? null;
    const limit = tokenizerConfig.model_max_length;
    this.modelMaxLength = typeof limit === "number" && limit < NO_LIMIT ? limit : (json.truncation?.max_length ?? null);
  }

  /** Ids and segment ids of one text or pair, truncated to fit `maxLength`. */
  encode(text: string, textPair?: string, opts: TruncationOptions = {}): TokenIds {
    return tokenizerCall("encoding text", () => this.#encode(text, textPair, opts));
  }

  #encode(text: string, textPair: string | undefined, opts: TruncationOptions): TokenIds {
    const addSpecial = opts.addSpecialTokens ?? true;
    let a = this.#tok.tokenize(text);
    let b = textPair === undefined ? null : this.#tok.tokenize(textPair);
    if (opts.truncation ?? true) {
      const maxLength = this.#maxLength(opts.maxLength);
      const budget = maxLength - (addSpecial ? this.#postProcess([], b && [], true).tokens.length : 0);
      if (budget < (b ? 2 : 1)) {
        throw new ConfigError(
          `maxLength must leave room for at least one token per text after the special tokens; ` + `got maxLength=${maxLength}. Raise maxLength.`,
        );
      }
      if (b === null) a = a.slice(0, budget);
      else {
        const [na, nb] = longestFirst(a.length, b.length, budget);
        [a, b] = [a.slice(0, na), b.slice(0, nb)];
      }
    }
    const tokens = this.#postProcess(a, b, addSpecial);
    return { ids: tokens.tokens.map((t) => this.#id(t, text)), typeIds: tokens.typeIds };
  }

  /**
   * Words already split (a tagging data set's rows) as ids, each token's word index (null for
   * special tokens) and how many words lost every token (to truncation, or tokenised to
   * nothing), as HF tokenizers' `is_split_into_words`:
   * each word is tokenised on its own after a space (byte-level BPE then marks it a word start, as
   * `add_prefix_space=True` does), the sub-tokens truncated to fit `maxLength` with the specials.
   */
  encodeWords(words: readonly string[], opts: TruncationOptions = {}): TokenIds & { wordIds: (number | null)[]; droppedWords: number } {
    return tokenizerCall("encoding words", () => {
      const pieces = words.map((w) => this.#tok.tokenize(` ${w}`));
      const probe = "\u0000word";
      const around = this.#postProcess([probe], null, opts.addSpecialTokens ?? true).tokens;
      const before = around.indexOf(probe);
      const budget = opts.truncation === false ? Number.POSITIVE_INFINITY : this.#maxLength(opts.maxLength) - (around.length - 1);
      const all = pieces.flat();
      const wordOf = pieces.flatMap((p, w) => p.map(() => w));
      const flat = all.slice(0, budget);
      const kept = new Set(wordOf.slice(0, flat.length)).size;
      const out = this.#postProcess(flat, null, opts.addSpecialTokens ?? true);
      const ids = out.tokens.map((t) => this.#id(t, words.join(" ")));
      const wordIds = out.tokens.map((_, i) => (i >= before && i - before < flat.length ? wordOf[i - before] : null));
      return { ids, typeIds: out.typeIds, wordIds, droppedWords: words.length - kept };
    });
  }

  #id(token: string, text: string): number {
    const id = this.#tok.token_to_id(token) ?? this.#tok.model?.unk_token_id;
    if (id === undefined) {
      throw new ConfigError(
        `Every token needs an id; ${JSON.stringify(token)} (in ${JSON.stringify(text)}) is not in the ` +
          `vocabulary and the tokenizer has no unknown token. Set unk_token in tokenizer_config.json.`,
      );
    }
    return id;
  }

  /**
   * Encode, truncate and pad a batch into [B, T] arrays.
   * @example tok.encodeBatch([{ text: "a", textPair: "b" }], { maxLength: 512, padding: "max_length" })
   */
  encodeBatch<D extends IdDType = "int64">(inputs: TextInput[], opts: BatchOptions<D> = {}): TokenBatch<IdArray<D>> {
    const rows = inputs.map((x) => this.encode(x.text, x.textPair, opts));
    const longest = rows.reduce((m, r) => Math.max(m, r.ids.length), 0);
    const T = opts.padding === "max_length" ? this.#maxLength(opts.maxLength) : longest;
    if (T < longest) {
      throw new ConfigError(
        `padding "max_length" needs rows no longer than maxLength=${T}; the longest has ${longest} ` +
          `tokens (truncation is off). Turn truncation on or raise maxLength.`,
      );
    }
    if (this.padId === null && rows.some((r) => r.ids.length < T)) {
      throw new ConfigError(
        `Padding needs a pad token, but neither tokenizer_config.json "pad_token" nor tokenizer.json ` +
          `"padding" names one. Add pad_token to tokenizer_config.json.`,
      );
    }
    const B = rows.length;
    const make = (): IdArray<D> => ((opts.dtype ?? "int64") === "int64" ? new BigInt64Array(B * T) : new Int32Array(B * T)) as IdArray<D>;
    const inputIds = make();
    const attentionMask = make();
    const tokenTypeIds = make();
    const put = (arr: IdArray<D>, i: number, v: number) => {
      if (arr instanceof BigInt64Array) arr[i] = BigInt(v);
      else arr[i] = v;
    };
    rows.forEach((r, row) => {
      for (let t = 0; t < T; t++) {
        const inside = t < r.ids.length;
        put(inputIds, row * T + t, inside ? r.ids[t] : (this.padId as number));
        put(attentionMask, row * T + t, inside ? 1 : 0);
        put(tokenTypeIds, row * T + t, inside ? r.typeIds[t] : 0);
      }
    });
    return { inputIds, attentionMask, tokenTypeIds, shape: [B, T] };
  }

  /** Text of token ids (special tokens dropped unless asked). */
  decode(ids: number[], skipSpecialTokens = true): string {
    return tokenizerCall("decoding ids", () => this.#tok.decode(ids, { skip_special_tokens: skipSpecialTokens }));
  }

  #maxLength(given: number | undefined): number {
    const m = given ?? this.modelMaxLength;
    if (m === null || !Number.isInteger(m) || m < 1) {
      throw new ConfigError(
        `Truncation and max_length padding need a positive integer maxLength; got ${m} (the ` +
          `tokenizer sets no model_max_length). Pass maxLength (the paper uses 512).`,
      );
    }
    return m;
  }

  /** The tokenizer's own template (special tokens, segment ids) around already-cut token lists. */
  #postProcess(a: string[], b: string[] | null, addSpecial: boolean): { tokens: string[]; typeIds: number[] } {
    const out = this.#tok.post_processor?.post_process(a, b, addSpecial) ?? { tokens: a, tokens_pair: b ?? undefined };
    // The ByteLevel post-processor (and no post-processor) hands the pair back unjoined.
    const pair = out.token_type_ids ? [] : (out.tokens_pair ?? []);
    const tokens = [...out.tokens, ...pair];
    const typeIds = out.token_type_ids ?? tokens.map((_, i) => (i < out.tokens.length ? 0 : 1));
    return { tokens, typeIds };
  }
}

/**
 * Lengths [na, nb] for a pair cut to `budget` tokens, as HF tokenizers' LongestFirst: if the
 * shorter fits in half the budget only the longer is cut; otherwise the shorter (the first on a
 * tie) keeps floor(budget/2) and the other the rest.
 */
export function longestFirst(na: number, nb: number, budget: number): [number, number] {
  if (na + nb <= budget) return [na, nb];
  const short = Math.min(na, nb);
  if (2 * short <= budget) return na <= nb ? [na, budget - na] : [budget - nb, nb];
  const half = Math.floor(budget / 2);
  return na <= nb ? [half, budget - half] : [budget - half, half];
}

/** The tokenizers library throws TypeErrors on malformed files: those are the files' fault, said as such. */
function tokenizerCall<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    if (e instanceof TensLoRAError) throw e;
    throw new FormatError(
      `the tokenizer failed ${what} (${String((e as Error)?.message ?? e).split("\n")[0]}); tokenizer.json or tokenizer_config.json is malformed or of a kind not supported, re-download them`,
    );
  }
}
