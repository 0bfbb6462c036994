/** RoBERTa configuration as HuggingFace's RobertaConfig stores it: pad 1, one token type unless it says otherwise. */
import { type TextEncoderConfig, parseTextEncoderConfig } from "../text-encoder.ts";

export type RobertaConfig = TextEncoderConfig;

export const parseRobertaConfig = (raw: Record<string, unknown>, source: string): RobertaConfig =>
  parseTextEncoderConfig(raw, source, { padTokenId: 1, typeVocabSize: 1 });
