/** BERT configuration as HuggingFace's BertConfig stores it: pad 0, two token types unless it says otherwise. */
import { type TextEncoderConfig, parseTextEncoderConfig } from "../text-encoder.ts";

export type BertConfig = TextEncoderConfig;

export const parseBertConfig = (raw: Record<string, unknown>, source: string): BertConfig =>
  parseTextEncoderConfig(raw, source, { padTokenId: 0, typeVocabSize: 2 });
