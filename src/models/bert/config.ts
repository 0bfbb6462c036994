/** BERT configuration as HuggingFace's BertConfig stores it: pad 0, two token types unless it says otherwise. */
import { type EncoderConfig, parseEncoderConfig } from "../text-encoder.ts";

export type BertConfig = EncoderConfig;

export const parseBertConfig = (raw: Record<string, unknown>, source: string): BertConfig =>
  parseEncoderConfig(raw, source, { padTokenId: 0, typeVocabSize: 2 });
