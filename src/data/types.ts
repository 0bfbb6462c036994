/**
 * Dataset shapes shared by the loaders, the preprocessors and the batch pipeline.
 *
 * A dataset is an in-memory list of examples with integer labels in [0, classNames.length).
 * Images stay on disk (`path`) until a batch needs them, except for sources that ship pixel
 * arrays (CIFAR-10, MNIST), whose items hold the decoded pixels.
 */

/** Decoded pixels, interleaved HWC (`data[(y * width + x) * channels + c]`), 8 bits per sample. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

export type ImageItem = { path: string; label: number } | { pixels: RawImage; label: number };

/** A file the loader left out, and why (sharp's message, "missing", …). */
export interface SkippedFile {
  path: string;
  reason: string;
}

export interface ImageDataset {
  kind: "image";
  items: ImageItem[];
  classNames: string[];
  /** Files found but not usable while building this dataset; empty for in-memory sources. */
  skipped: SkippedFile[];
}

export interface TextItem {
  text: string;
  /** Second sentence of a pair task (MRPC); the tokenizer joins the two with its own template. */
  textPair?: string;
  label: number;
}

export interface TextDataset {
  kind: "text";
  items: TextItem[];
  classNames: string[];
}

/** One sentence of a tagging data set: its words and each word's class id. */
export interface TaggedSentence {
  words: string[];
  tags: number[];
}

export interface TaggedDataset {
  kind: "tokens";
  items: TaggedSentence[];
  classNames: string[];
}

export type Dataset = ImageDataset | TextDataset;

/** The paper trains on `train` and reports the best accuracy on `test` (GLUE: the dev file). */
export interface Split<D extends Dataset | TaggedDataset> {
  train: D;
  test: D;
}

/** Where loaders send non-fatal notices (skipped files); defaults to `console.warn`. */
export type WarnFn = (message: string) => void;
