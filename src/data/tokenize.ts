/** The tokenizer of a model folder: text-tokenizer.ts's `TextTokenizer`, read from `tokenizer.json` and `tokenizer_config.json`. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "../errors.ts";
import { readText } from "./files.ts";
import { TextTokenizer as FromObjects } from "./text-tokenizer.ts";

export * from "./text-tokenizer.ts";

/** A HuggingFace tokenizer (`tokenizer.json`) that encodes batches as a model's inputs, and reads itself from a folder. */
export class TextTokenizer extends FromObjects {
  /** From a HF model folder holding `tokenizer.json` and optionally `tokenizer_config.json`. */
  static fromDir(dir: string): TextTokenizer {
    const configPath = join(dir, "tokenizer_config.json");
    const config = existsSync(configPath) ? (readJson(configPath) as Record<string, unknown>) : {};
    return new TextTokenizer(readJson(join(dir, "tokenizer.json")) as object, config);
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readText(file));
  } catch (e) {
    if (e instanceof SyntaxError) throw new FormatError(`${file} must hold valid JSON: ${e.message}. Re-download it.`);
    throw e;
  }
}
