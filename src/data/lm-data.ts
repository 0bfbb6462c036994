/**
 * Causal-LM data from files: JSONL records or plain text files, and a model folder's tokenizer
 * whose chat templates (through @huggingface/jinja) run in the sandbox of chat-template.ts. The
 * records, their tokens and the examples are lm-records.ts's.
 */
import { existsSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { ConfigError, DataError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { ChatTemplate } from "./chat-template.ts";
import { readDir, readLines, readText } from "./files.ts";
import { type LmRecord, LmTokens, lmRecordsOf } from "./lm-records.ts";
import { TextTokenizer } from "./tokenize.ts";

export * from "./lm-records.ts";

/** JSONL records of a file, read a line at a time. */
export function readLmJsonl(path: string): LmRecord[] {
  return lmRecordsOf(readLines(path), path);
}

/** Plain text: one file, or every .txt file of a folder (sorted). */
export function readTextCorpus(path: string): string[] {
  if (!statSync(path).isDirectory()) return [readText(path)];
  const files = readDir(path)
    .filter((f) => f.endsWith(".txt"))
    .sort();
  if (!files.length) throw new DataError(`${path} holds no .txt files; give a .jsonl file, a .txt file or a folder of .txt files`);
  return files.map((f) => readText(join(path, f)));
}

/** Records from a path: .jsonl → records, anything else readable → plain text. */
export function readLmData(path: string): { records?: LmRecord[]; texts?: string[] } {
  if (!existsSync(path)) throw new DataError(`--data ${path} does not exist`);
  return extname(path) === ".jsonl" ? { records: readLmJsonl(path) } : { texts: readTextCorpus(path) };
}

/** The tokenizer of a model folder, whose chat templates render in the sandbox. */
export class LmTokenizer extends LmTokens {
  constructor(readonly dir: string) {
    if (!existsSync(join(dir, "tokenizer.json")))
      throw new ConfigError(`${dir} has no tokenizer.json; causal-LM training needs the tokenizer files of its HF folder`);
    const cfgPath = join(dir, "tokenizer_config.json");
    const config = existsSync(cfgPath) ? (readJsonFile(cfgPath, "tokenizer config") as Record<string, unknown>) : {};
    super(TextTokenizer.fromDir(dir), config, cfgPath, (source, where) => new ChatTemplate(source, where));
  }
}
