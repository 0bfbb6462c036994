/**
 * Text in, text out: prompts (plain, or chat messages through the tokenizer's chat_template)
 * encoded with the model's tokenizer, continuations streamed as text as they are decoded. A row
 * stops at an end token, at a stop string (kept in the text, as HF's stop_strings keep it) or at
 * the token limit. Text is emitted only once it decodes to whole characters.
 */
import type { ChatMessage, LmTokenizer } from "../data/lm-data.ts";
import type { GenerateOptions, Generator } from "./generate.ts";

/** Generation options for text prompts, with stop strings in place of a token predicate. */
export interface TextGenerateOptions extends Omit<GenerateOptions, "isDone"> {
  /** Strings that end a row (the row's text ends with the first one). */
  stopStrings?: string[];
}

/** New text of one prompt's continuation. */
export interface TextDelta {
  row: number;
  text: string;
}

/** The prompt text for chat messages: the template with the assistant's generation prompt. */
export function chatPrompt(tok: LmTokenizer, messages: ChatMessage[]): string {
  return tok.renderChat(messages, true);
}

/** Generate from text prompts, yielding each prompt's new text as it is decoded. */
export async function* generateText(gen: Generator, tok: LmTokenizer, prompts: string[], opts: TextGenerateOptions = {}): AsyncGenerator<TextDelta> {
  const ids = prompts.map((p) => tok.encode(p, true));
  const stops = opts.stopStrings ?? [];
  const texts = prompts.map(() => "");
  const emitted = prompts.map(() => 0);
  /** The decoded continuation, cut after the first stop string; whether one was found. */
  const decode = (tokens: readonly number[]): [string, boolean] => {
    const text = tok.tok.decode([...tokens]);
    let cut = -1;
    for (const s of stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at + s.length < cut)) cut = at + s.length;
    }
    return cut < 0 ? [text, false] : [text.slice(0, cut), true];
  };
  const outs: number[][] = prompts.map(() => []);
  // an end token ends its row without being part of the text
  const eos = new Set(opts.eosTokenIds ?? gen.eosTokenIds);
  const isDone = (row: number, tokens: readonly number[]) => stops.length > 0 && decode(tokens)[1];
  for await (const step of gen.tokens(ids, { ...opts, isDone })) {
    for (let r = 0; r < step.length; r++) {
      const t = step[r];
      if (t === undefined || eos.has(t)) continue;
      outs[r].push(t);
      texts[r] = decode(outs[r])[0];
      // an incomplete UTF-8 sequence decodes to U+FFFD until its last byte arrives
      const ready = texts[r].endsWith("\uFFFD") ? texts[r].slice(0, -1) : texts[r];
      if (ready.length > emitted[r]) {
        yield { row: r, text: ready.slice(emitted[r]) };
        emitted[r] = ready.length;
      }
    }
  }
  for (let r = 0; r < texts.length; r++) if (texts[r].length > emitted[r]) yield { row: r, text: texts[r].slice(emitted[r]) };
}
