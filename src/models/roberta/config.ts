/** RoBERTa configuration as HuggingFace's RobertaConfig stores it: pad 1, one token type unless it says otherwise. */
import { type EncoderConfig, parseEncoderConfig } from "../text-encoder.ts";

export type RobertaConfig = EncoderConfig;

export const parseRobertaConfig = (raw: Record<string, unknown>, source: string): RobertaConfig =>
  parseEncoderConfig(raw, source, { padTokenId: 1, typeVocabSize: 1 });
