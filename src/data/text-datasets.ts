/**
 * Text classification datasets: the GLUE TSV files the paper uses (CoLA, SST-2, MRPC) and
 * generic CSV / TSV / JSONL tables with named columns.
 *
 * A malformed row (wrong column count, bad label) is a DataError naming file and line: a
 * silently dropped row would change the dataset the reported metric refers to.
 */
import { extname, join } from "node:path";
import { ConfigError, DataError, FormatError } from "../errors.ts";
import { parseCsv } from "./csv.ts";
import { checkDataset } from "./dataset-checks.ts";
import { readLines, readText } from "./files.ts";
import type { Split, TextDataset, TextItem } from "./types.ts";

/** The GLUE tasks the text readers support. */
export type GlueTask = "cola" | "sst2" | "mrpc";

interface GlueLayout {
  /** Exact first line, or null for CoLA's header-less files. */
  header: string[] | null;
  columns: number;
  text: number;
  textPair?: number;
  label: number;
  classNames: string[];
}

// Column layouts of the GLUE distribution's train.tsv / dev.tsv; class names as in HF `glue`.
const GLUE: Record<GlueTask, GlueLayout> = {
  // source, label, original acceptability mark, sentence
  cola: { header: null, columns: 4, text: 3, label: 1, classNames: ["unacceptable", "acceptable"] },
  sst2: { header: ["sentence", "label"], columns: 2, text: 0, label: 1, classNames: ["negative", "positive"] },
  mrpc: {
    header: ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
    columns: 5,
    text: 3,
    textPair: 4,
    label: 0,
    classNames: ["not_equivalent", "equivalent"],
  },
};

/**
 * The paper's GLUE protocol: train on `dir/train.tsv`, evaluate on `dir/dev.tsv` (the
 * validation split). MRPC items are sentence pairs; the tokenizer adds `</s></s>` between them.
 */
export function loadGlue(task: GlueTask, dir: string): Split<TextDataset> {
  return { train: readGlueTsv(task, join(dir, "train.tsv")), test: readGlueTsv(task, join(dir, "dev.tsv")) };
}

/** One GLUE TSV file. Fields are split on tabs with no quote handling, as GLUE's loaders do. */
export function readGlueTsv(task: GlueTask, file: string): TextDataset {
  const layout = GLUE[task];
  const lines = readText(file)
    .replace(/^\ufeff/, "")
    .split(/\r?\n/);
  if (layout.header && lines[0] !== layout.header.join("\t")) {
    throw new FormatError(
      `A GLUE ${task} file must start with the header ${JSON.stringify(layout.header.join("\t"))}; ` +
        `${file} starts with ${JSON.stringify(lines[0])}. Check the task name and the file.`,
    );
  }
  const items: TextItem[] = [];
  for (let i = layout.header ? 1 : 0; i < lines.length; i++) {
    if (lines[i] === "") continue;
    const where = `${file}:${i + 1}`;
    const f = lines[i].split("\t");
    if (f.length !== layout.columns) {
      throw new DataError(
        `Each ${task} row needs ${layout.columns} tab-separated columns; ${where} has ${f.length}. ` + `Fix the row (a stray tab inside a sentence?).`,
      );
    }
    const label = parseIndex(f[layout.label]);
    if (label === null || label >= layout.classNames.length) {
      throw new DataError(
        `${task} labels must be integers in [0, ${layout.classNames.length}); ${where} has ` + `${JSON.stringify(f[layout.label])}. Fix the label column.`,
      );
    }
    const item: TextItem = { text: f[layout.text], label };
    if (layout.textPair !== undefined) item.textPair = f[layout.textPair];
    items.push(item);
  }
  const ds: TextDataset = { kind: "text", items, classNames: layout.classNames };
  checkDataset(ds, file);
  return ds;
}

/** Which columns of a CSV or JSONL table hold the text and the label. */
export interface TableOptions {
  /** Column (CSV header name or JSON key) holding the text. */
  text: string;
  /** Column holding the second text of a pair task, if any. */
  textPair?: string;
  /** Column holding the label: class indices (integers) or class names (strings). */
  label: string;
  /**
   * Class names in index order. Without it, integer labels name classes "0".."max" and string
   * labels become classes in sorted order (over all files, so train and test agree).
   */
  classNames?: string[];
  /**
   * Number of classes of integer labels: every label in [0, numClasses), not all of which need
   * occur (a split may lack a class). Without it integer labels must be exactly 0..C-1.
   */
  numClasses?: number;
  /** Defaults to the extension: .csv, .tsv, .jsonl / .ndjson. */
  format?: "csv" | "tsv" | "jsonl";
}

/** A train and a test table sharing one label mapping. */
export function loadTextTable(files: { train: string; test: string }, opts: TableOptions): Split<TextDataset> {
  const [train, test] = readTables([files.train, files.test], opts);
  return { train, test };
}

/** A single table as a dataset. */
export function readTextTable(file: string, opts: TableOptions): TextDataset {
  return readTables([file], opts)[0];
}

interface RawRow {
  text: string;
  textPair?: string;
  label: string | number;
  where: string;
}

function readTables(files: string[], opts: TableOptions): TextDataset[] {
  const tables = files.map((f) => readRows(f, opts));
  const { labels, classNames } = assignLabels(tables.flat(), opts);
  let next = 0;
  return tables.map((rows, t) => {
    const items = rows.map(({ text, textPair }): TextItem => {
      const label = labels[next++];
      return textPair === undefined ? { text, label } : { text, textPair, label };
    });
    const ds: TextDataset = { kind: "text", items, classNames };
    checkDataset(ds, files[t]);
    return ds;
  });
}

const FORMAT_BY_EXTENSION: Record<string, TableOptions["format"]> = {
  ".csv": "csv",
  ".tsv": "tsv",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
};

function readRows(file: string, opts: TableOptions): RawRow[] {
  const ext = extname(file).toLowerCase();
  const format = opts.format ?? FORMAT_BY_EXTENSION[ext];
  if (format === undefined) {
    throw new ConfigError(`A text table must be .csv, .tsv or .jsonl; ${file} is not. Pass format explicitly.`);
  }
  if (format === "jsonl") return jsonlRows(file, opts);
  return delimitedRows(readText(file), file, opts, format === "tsv" ? "\t" : ",");
}

function delimitedRows(text: string, file: string, opts: TableOptions, delimiter: string): RawRow[] {
  const [header, ...records] = parseCsv(text, file, delimiter);
  if (!header) throw new DataError(`A CSV table needs a header row; ${file} is empty. Add the header and rows.`);
  const col = (name: string) => {
    const i = header.fields.indexOf(name);
    if (i < 0) {
      throw new ConfigError(
        `Column "${name}" is not in the header of ${file}; it has ${JSON.stringify(header.fields)}. ` +
          `Set the text/textPair/label options to existing column names.`,
      );
    }
    return i;
  };
  const [t, p, l] = [col(opts.text), opts.textPair === undefined ? -1 : col(opts.textPair), col(opts.label)];
  return records.map(({ fields, line }) => {
    const where = `${file}:${line}`;
    if (fields.length !== header.fields.length) {
      throw new DataError(
        `Each CSV row needs as many fields as the header (${header.fields.length}); ${where} has ` +
          `${fields.length}. Quote fields that contain the delimiter.`,
      );
    }
    return { text: fields[t], ...(p >= 0 ? { textPair: fields[p] } : {}), label: fields[l], where };
  });
}

function jsonlRows(file: string, opts: TableOptions): RawRow[] {
  const rows: RawRow[] = [];
  let i = 0;
  for (const line of readLines(file)) {
    i++;
    if (line.trim() === "") continue;
    const where = `${file}:${i}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new DataError(`Each JSONL line must be one JSON object; ${where} does not parse (${(e as Error).message}).`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      throw new DataError(`Each JSONL line must be one JSON object; ${where} holds ${JSON.stringify(obj)}.`);
    }
    const rec = obj as Record<string, unknown>;
    const str = (key: string) => {
      if (typeof rec[key] !== "string") {
        throw new DataError(`Field "${key}" must be a string; ${where} has ${JSON.stringify(rec[key])}.`);
      }
      return rec[key] as string;
    };
    const label = rec[opts.label];
    if (typeof label !== "string" && typeof label !== "number") {
      throw new DataError(`Field "${opts.label}" must be a class index or a class name; ${where} has ${JSON.stringify(label)}.`);
    }
    const pair = opts.textPair === undefined ? {} : { textPair: str(opts.textPair) };
    rows.push({ text: str(opts.text), ...pair, label, where });
  }
  return rows;
}

/**
 * Integer labels are class indices 0..C-1, each of which must occur: a stray `7` among 0/1 (or a
 * `1000000000`) would otherwise size a head of 8 (or 10^9) classes without a word.
 */
function checkContiguous(values: number[], rows: RawRow[], max: number): void {
  const seen = new Set(values);
  if (seen.size === max + 1) return;
  const missing = max + 1 - seen.size;
  const at = rows[values.indexOf(max)].where;
  const present = [...seen].sort((a, b) => a - b);
  const shown = present.length > 8 ? `${present.slice(0, 8).join(", ")}, …` : present.join(", ");
  throw new DataError(
    `Integer labels must be the class indices 0..C-1, each used at least once; the labels are ${shown} ` +
      `(the largest, ${max}, at ${at}), so ${missing} of the indices below ${max + 1} never occur. Fix the stray label, use class names, or give the class count (--num-labels) when a split lacks classes.`,
  );
}

/**
 * Labels → class indices. The first row decides the kind: an integer (or integer string) means
 * class indices, anything else class names; a row of the other kind is a DataError.
 */
function assignLabels(rows: RawRow[], opts: Pick<TableOptions, "classNames" | "numClasses">): { labels: number[]; classNames: string[] } {
  const given = opts.classNames;
  if (rows.length === 0) return { labels: [], classNames: given ?? [] };
  const values = rows.map((r) => (typeof r.label === "number" ? r.label : (parseIndex(r.label) ?? r.label)));
  const byIndex = typeof values[0] === "number";
  values.forEach((v, i) => {
    if ((typeof v === "number") !== byIndex || (typeof v === "number" && !Number.isInteger(v))) {
      throw new DataError(
        `Labels must be all integer class indices or all class names (decided by ${rows[0].where}); ` +
          `${rows[i].where} has ${JSON.stringify(rows[i].label)}. Fix the label.`,
      );
    }
  });
  if (byIndex) {
    const n = opts.numClasses;
    if (n !== undefined) {
      const bad = values.findIndex((v) => (v as number) < 0 || (v as number) >= n);
      if (bad >= 0) {
        throw new DataError(
          `Labels must lie in [0, ${n}) (${n} classes, set by numClasses / --num-labels); ${rows[bad].where} has ${values[bad]}. ` +
            `Fix the label or raise the class count.`,
        );
      }
    }
    const max = (values as number[]).reduce((a, b) => Math.max(a, b), 0);
    if (!given && n === undefined) checkContiguous(values as number[], rows, max);
    const classNames = given ?? Array.from({ length: n ?? max + 1 }, (_, i) => String(i));
    values.forEach((v, i) => {
      if ((v as number) < 0 || (v as number) >= classNames.length) {
        throw new DataError(
          `Labels must lie in [0, ${classNames.length}) (the number of classes); ${rows[i].where} ` +
            `has ${v}. Fix the label or pass the full classNames list.`,
        );
      }
    });
    return { labels: values as number[], classNames };
  }
  const classNames = given ?? [...new Set(values as string[])].sort();
  const index = new Map(classNames.map((name, c) => [name, c]));
  const labels = values.map((v, i) => {
    const c = index.get(v as string);
    if (c === undefined) {
      throw new DataError(
        `Label names must be among the classNames ${JSON.stringify(classNames)}; ${rows[i].where} ` +
          `has ${JSON.stringify(v)}. Fix the label or extend classNames.`,
      );
    }
    return c;
  });
  return { labels, classNames };
}

/** The integer a label string spells ("0", "+1", "-2"), or null if it is not one. */
function parseIndex(s: string): number | null {
  return /^[+-]?\d+$/.test(s.trim()) ? Number(s.trim()) : null;
}
