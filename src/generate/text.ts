/**
 * Text in, text out: prompts (plain, or chat messages through the tokenizer's chat_template)
 * encoded with the model's tokenizer, continuations streamed as text as they are decoded. A row
 * stops at an end token, at a stop string (kept in the text, as HF's stop_strings keep it) or at
 * the token limit. Text is emitted only once it decodes to whole characters. As transformers'
 * `stop_strings`, a row ends at the token that completes a stop string and keeps that whole
 * token: the text is never cut inside a token.
 */
import { ChatTemplateError } from "../data/chat-template.ts";
import type { ChatMessage, LmTokenizer } from "../data/lm-data.ts";
import type { GenerateOptions, Generator } from "./generate.ts";

/** Generation options for text prompts, with stop strings in place of a token predicate. */
export interface TextGenerateOptions extends Omit<GenerateOptions, "isDone"> {
  /** Strings that end a row at the token completing the first of them (kept in the text). */
  stopStrings?: string[];
}

/** New text of one prompt's continuation. */
export interface TextDelta {
  row: number;
  text: string;
}

/** The prompt text for chat messages: the template with the assistant's generation prompt. */
export function chatPrompt(tok: LmTokenizer, messages: ChatMessage[]): string {
  const prompt = tok.renderChat(messages, true);
  if (!prompt)
    throw new ChatTemplateError(`the chat_template of ${tok.dir} renders nothing for these ${messages.length} messages; check that it loops over "messages"`);
  return prompt;
}

/** Generate from text prompts, yielding each prompt's new text as it is decoded. */
export async function* generateText(gen: Generator, tok: LmTokenizer, prompts: string[], opts: TextGenerateOptions = {}): AsyncGenerator<TextDelta> {
  const ids = prompts.map((p) => tok.encode(p, true));
  const stops = opts.stopStrings ?? [];
  const texts = prompts.map(() => "");
  const emitted = prompts.map(() => 0);
  /** The decoded continuation, and whether it holds a stop string (its last token completed one: rows stop at the first). */
  const decode = (tokens: readonly number[]): [string, boolean] => {
    const text = tok.tok.decode([...tokens]);
    return [text, stops.some((s) => text.includes(s))];
  };
  const outs: number[][] = prompts.map(() => []);
  // an end token ends its row without being part of the text
  const eos = new Set(opts.eosTokenIds ?? gen.eosTokenIds);
  const isDone = (_row: number, tokens: readonly number[]) => stops.length > 0 && decode(tokens)[1];
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
