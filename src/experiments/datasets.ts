/**
 * `--data PATH` to a split and then to model batches. The layout is detected from the path
 * (or named with `format`): an image folder with one subfolder per class (EuroSAT), DTD,
 * CIFAR-10 binary batches, a GLUE task folder (CoLA, SST-2, MRPC), CSV/TSV/JSONL tables, or
 * `mnist` (the digits the `mnist` package ships).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { readHead } from "../data/files.ts";
import { loadDtd, loadImageFolderSplit } from "../data/image-datasets.ts";
import { ImageProcessor, type ImageProcessorConfig } from "../data/image-preprocess.ts";
import { loadCifar10, loadMnist } from "../data/pixel-datasets.ts";
import { loadTaggedWords, looksTagged } from "../data/tagged-words.ts";
import { splitDataset } from "../data/split.ts";
import { type GlueTask, loadGlue, loadTextTable, readTextTable } from "../data/text-datasets.ts";
import { TextTokenizer } from "../data/tokenize.ts";
import type { ImageDataset, Split, TaggedDataset, TextDataset, WarnFn } from "../data/types.ts";
import { ConfigError, DataError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import type { LoadedModel } from "../models/load.ts";
import { taskOf } from "../tasks/index.ts";
import { tokenTaskData } from "../tasks/token-data.ts";
import { type TaskData, imageTaskData, textTaskData } from "../tasks/task-data.ts";

/** The dataset layouts `--data` reads. */
export const DATA_FORMATS = ["imagefolder", "dtd", "cifar10", "mnist", "glue-cola", "glue-sst2", "glue-mrpc", "table", "tagged"] as const;
/** A dataset layout (one of `DATA_FORMATS`). */
export type DataFormat = (typeof DATA_FORMATS)[number];

export interface DataOptions {
  format?: DataFormat;
  seed?: number;
  /** Train share for layouts without a given split (image folders: the paper's 0.8). */
  trainFraction?: number;
  /** Tables: the test file (else a seeded split of `path`), and the column names. */
  testPath?: string;
  textColumn?: string;
  textPairColumn?: string;
  labelColumn?: string;
  /** The head's class count (--num-labels): integer table labels lie in [0, numLabels); named classes must number exactly this. */
  numLabels?: number;
  /** Tagged words: the model's id2label, which named tags map through when it holds them all. */
  modelLabels?: string[];
  warn?: WarnFn;
}

export type AnySplit =
  | { kind: "image"; split: Split<ImageDataset> }
  | { kind: "text"; split: Split<TextDataset> }
  | { kind: "tokens"; split: Split<TaggedDataset> };

/** Guess the layout of `path`; throw naming what was looked for when nothing fits. */
export function detectFormat(path: string): DataFormat {
  if (path === "mnist") return "mnist";
  if (!existsSync(path)) throw new DataError(`--data ${path} does not exist`);
  if (statSync(path).isFile()) return extname(path) === ".jsonl" && looksTagged(readHead(path, 1 << 16)) ? "tagged" : "table";
  const names = readdirSync(path);
  if (names.includes("data_batch_1.bin")) return "cifar10";
  if (names.includes("images") && names.includes("labels")) return "dtd";
  if (names.includes("train.tsv") && names.includes("dev.tsv")) {
    const b = basename(path)
      .toLowerCase()
      .replace(/[^a-z0-9]/g, "");
    if (b.includes("cola")) return "glue-cola";
    if (b.includes("sst")) return "glue-sst2";
    if (b.includes("mrpc")) return "glue-mrpc";
    throw new DataError(`${path} holds GLUE files but its name does not say which task; pass --data-format glue-cola, glue-sst2 or glue-mrpc`);
  }
  if (names.some((n) => statSync(join(path, n)).isDirectory())) return "imagefolder";
  throw new DataError(`cannot tell the layout of ${path}; pass --data-format (${DATA_FORMATS.join(", ")})`);
}

/** Open a dataset folder or file, detecting its format unless given, as train and test splits. */
export async function openDataset(path: string, o: DataOptions = {}): Promise<AnySplit> {
  const split = await openSplit(path, o);
  const classes = split.split.train.classNames;
  if (o.numLabels !== undefined && classes.length !== o.numLabels) {
    const shown = classes.length > 8 ? `${classes.slice(0, 8).join(", ")}, …` : classes.join(", ");
    throw new ConfigError(
      `--num-labels ${o.numLabels} does not fit ${path}: its ${classes.length} classes are named (${shown}); ` +
        `--num-labels sets the class count of integer labels only, drop it or make it ${classes.length}`,
    );
  }
  return split;
}

async function openSplit(path: string, o: DataOptions): Promise<AnySplit> {
  const format = o.format ?? detectFormat(path);
  const seed = o.seed ?? 0;
  switch (format) {
    case "imagefolder":
      return { kind: "image", split: await loadImageFolderSplit(path, { seed, trainFraction: o.trainFraction, warn: o.warn }) };
    case "dtd":
      return { kind: "image", split: await loadDtd(path, { seed, warn: o.warn }) };
    case "cifar10":
      return { kind: "image", split: loadCifar10(path) };
    case "mnist":
      return { kind: "image", split: loadMnist({ seed, trainFraction: o.trainFraction }) };
    case "table": {
      if (!o.textColumn || !o.labelColumn)
        throw new ConfigError(`a table needs --text-column and --label-column (found file ${path}, extension ${extname(path)})`);
      const cols = { text: o.textColumn, textPair: o.textPairColumn, label: o.labelColumn, numClasses: o.numLabels };
      // one table: a seeded split stratified by class (80/20, as an image folder's), else the given test file
      if (!o.testPath) return { kind: "text", split: splitDataset(readTextTable(path, cols), { trainFraction: o.trainFraction, seed, stratify: true }) };
      return { kind: "text", split: loadTextTable({ train: path, test: o.testPath }, cols) };
    }
    case "tagged":
      if (!o.testPath) throw new ConfigError(`tagged words need a test file: pass --eval-data FILE (JSONL rows of "tokens" and "tags")`);
      return { kind: "tokens", split: loadTaggedWords({ train: path, test: o.testPath }, { modelLabels: o.modelLabels, numLabels: o.numLabels }) };
    default:
      return { kind: "text", split: loadGlue(format.slice(5) as GlueTask, path) };
  }
}

/**
 * A model's image preprocessing: its preprocessor_config.json, else the ViT defaults resized to
 * the model's own image_size (the defaults' 224 would not fit a model of another size).
 */
export function modelImageConfig(model: LoadedModel): ImageProcessorConfig {
  const imageSize = (model.config as { imageSize: number }).imageSize;
  const pre = join(model.dir, "preprocessor_config.json");
  const json = existsSync(pre) ? readJsonFile(pre, "preprocessor config") : undefined;
  const base = ImageProcessor.fromPreprocessorConfig(json).config;
  const size = { height: imageSize, width: imageSize };
  return { ...base, resize: json === undefined ? size : (base.resize ?? size) };
}

/** Batches for a model: images through its preprocessor, text through its tokenizer. */
export function taskDataFor(model: LoadedModel, data: AnySplit, opts: { maxLength: number; augment?: boolean }): TaskData {
  const task = model.family.task;
  if (data.kind !== taskOf(task).dataKind) throw new ConfigError(`the data is ${data.kind} but the model (${model.family.modelType}) does ${task}`);
  if (data.kind === "image") {
    const cfg = model.config as { imageSize: number; numChannels: number };
    const conf = modelImageConfig(model);
    const test = new ImageProcessor(conf);
    const train = new ImageProcessor(
      conf,
      opts.augment ? { horizontalFlip: 0.5, colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4, p: 0.5 } } : {},
    );
    const mean = [...(conf.mean ?? [0, 0, 0])];
    const std = [...(conf.std ?? [1, 1, 1])];
    return imageTaskData(data.split, { train, test }, { channels: cfg.numChannels, size: cfg.imageSize, mean, std });
  }
  if (!existsSync(join(model.dir, "tokenizer.json"))) {
    throw new ConfigError(`${model.dir} has no tokenizer.json; text models need the tokenizer files of their HF folder`);
  }
  const maxLength = Math.min(opts.maxLength, positionLimit(model));
  if (data.kind === "tokens") return tokenTaskData(data.split, TextTokenizer.fromDir(model.dir), maxLength);
  return textTaskData(data.split, TextTokenizer.fromDir(model.dir), maxLength);
}

/** The most tokens the model's position table takes; longer inputs would index past the table. */
export function positionLimit(model: LoadedModel): number {
  return model.family.maxSequenceLength?.(model.config) ?? Number.POSITIVE_INFINITY;
}
