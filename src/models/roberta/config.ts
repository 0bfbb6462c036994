/** RoBERTa configuration as HuggingFace's RobertaConfig stores it. */
import { ConfigError } from "../../errors.ts";
import { ConfigReader } from "../config-fields.ts";
import { type EncoderConfig, parseEncoderFields } from "../encoder-config.ts";

export interface RobertaConfig extends EncoderConfig {
  vocabSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  padTokenId: number;
}

export function parseRobertaConfig(raw: Record<string, unknown>, source: string): RobertaConfig {
  const r = new ConfigReader(raw, source);
  const shared = parseEncoderFields(r, source, 0.1);
  const pe = r.str("position_embedding_type", "absolute");
  if (pe !== "absolute") throw new ConfigError(`${source}: position_embedding_type "${pe}" is not supported (only "absolute")`);
  return {
    ...shared,
    vocabSize: r.int("vocab_size"),
    maxPositionEmbeddings: r.int("max_position_embeddings"),
    typeVocabSize: r.int("type_vocab_size", 1),
    padTokenId: r.int("pad_token_id", 1, 0),
  };
}
