/**
 * Token-classification data: JSONL rows of words and one tag per word, `{"tokens": [...],
 * "tags": [...]}`, the tags under `tags`, `ner_tags` or `pos_tags` (the names HuggingFace data
 * sets use), as names or as integer ids. Names are mapped through the model's id2label when it
 * holds them all (a checkpoint trained on these tags), otherwise they become the classes in
 * sorted order; integers are ids into [0, numLabels).
 */
import { DataError } from "../errors.ts";
import { readLines } from "./files.ts";
import type { Split, TaggedDataset } from "./types.ts";

export const TAG_KEYS = ["tags", "ner_tags", "pos_tags"] as const;

interface RawRow {
  words: string[];
  tags: (string | number)[];
  where: string;
}

/** Whether a JSONL file's first row looks like tagged words. */
export function looksTagged(text: string): boolean {
  const first = text.split(/\r?\n/).find((l) => l.trim());
  if (!first) return false;
  try {
    const row = JSON.parse(first) as Record<string, unknown>;
    return Array.isArray(row.tokens) && TAG_KEYS.some((k) => Array.isArray(row[k]));
  } catch {
    return false;
  }
}

function readRows(file: string): RawRow[] {
  const rows: RawRow[] = [];
  let i = -1;
  for (const line of readLines(file)) {
    i++;
    if (!line.trim()) continue;
    const where = `${file}:${i + 1}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${where}: not valid JSON (${(e as Error).message}); each line must be one {"tokens": [...], "tags": [...]} object`);
    }
    const key = TAG_KEYS.find((k) => Array.isArray(row[k]));
    const words = row.tokens;
    if (!Array.isArray(words) || !key)
      throw new DataError(
        `${where}: a row needs "tokens" (the words) and one of ${TAG_KEYS.map((k) => `"${k}"`).join(", ")} (a tag per word); found keys ${Object.keys(row).join(", ")}`,
      );
    const tags = row[key] as unknown[];
    if (tags.length !== words.length) throw new DataError(`${where}: ${words.length} tokens but ${tags.length} ${key}; give one tag per word`);
    if (!words.every((w) => typeof w === "string")) throw new DataError(`${where}: every token must be a string`);
    if (!tags.every((t) => typeof t === "string" || (typeof t === "number" && Number.isInteger(t))))
      throw new DataError(`${where}: ${key} must be tag names (strings) or integer ids`);
    rows.push({ words: words as string[], tags: tags as (string | number)[], where });
  }
  return rows;
}

export interface TagOptions {
  /** The model's id2label, used when it names every tag of the data. */
  modelLabels?: string[];
  /** Integer tags: the number of classes (default: the model's labels, else the largest id + 1). */
  numLabels?: number;
}

/** Train and test files of tagged words with one label set (named tags must be all names or all ids across both files). */
export function loadTaggedWords(files: { train: string; test: string }, o: TagOptions = {}): Split<TaggedDataset> {
  const raw = { train: readRows(files.train), test: readRows(files.test) };
  const all = [...raw.train, ...raw.test];
  if (raw.train.length === 0) throw new DataError(`${files.train} holds no tagged sentences`);
  const named = typeof all.find((r) => r.tags.length)?.tags[0] === "string";
  const mixed = all.find((r) => r.tags.some((t) => (typeof t === "string") !== named));
  if (mixed) throw new DataError(`${mixed.where}: tags mix names and integer ids; use one kind in every file`);
  let classNames: string[];
  if (named) {
    const seen = [...new Set(all.flatMap((r) => r.tags as string[]))].sort();
    const fromModel = o.modelLabels && seen.every((t) => o.modelLabels!.includes(t));
    classNames = fromModel ? o.modelLabels! : seen;
  } else {
    const top = Math.max(...all.flatMap((r) => r.tags as number[]));
    const n = o.numLabels ?? o.modelLabels?.length ?? top + 1;
    const bad = all.find((r) => (r.tags as number[]).some((t) => t < 0 || t >= n));
    if (bad) throw new DataError(`${bad.where}: a tag id is outside [0, ${n}); pass --num-labels with the tag count, or give the tags as names`);
    classNames = o.modelLabels?.length === n ? o.modelLabels : Array.from({ length: n }, (_, i) => `LABEL_${i}`);
  }
  const index = new Map(classNames.map((c, i) => [c, i]));
  const dataset = (rows: RawRow[]): TaggedDataset => ({
    kind: "tokens",
    classNames,
    items: rows.map((r) => ({ words: r.words, tags: r.tags.map((t) => (typeof t === "number" ? t : index.get(t)!)) })),
  });
  return { train: dataset(raw.train), test: dataset(raw.test) };
}
