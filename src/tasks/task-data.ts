/**
 * A dataset seen through a model: fixed-size batches of HuggingFace-named inputs. Graphs are
 * compiled for one batch shape, so a short last batch is filled by repeating its first example
 * with label -100, which the loss ignores and evaluation drops.
 */
import { ConfigError, ImageDecodeError } from "../errors.ts";
import type { ImageDataset, ImageItem, RawImage, TextDataset } from "../data/types.ts";
import type { ImageProcessor } from "../data/image-preprocess.ts";
import type { TextTokenizer } from "../data/tokenize.ts";
import type { LmExample, SparseTarget } from "../data/lm-data.ts";
import type { HostTensor } from "../tensor/host.ts";
import { Rng } from "../tensor/random.ts";

/** The label of rows the loss skips (padding, prompts): PyTorch's ignore_index. */
export const IGNORE_LABEL = -100;

export type SplitName = "train" | "test";

/** What `eval` scores: a split of the data, or "all" of it (the train examples, then the test ones). */
export type EvalSplit = SplitName | "all";

export interface Batch {
  inputs: Record<string, HostTensor>;
  labels: HostTensor; // int64 [B] (causal LM: [B, T]), IGNORE_LABEL on filler rows
  /** Data with soft targets (TaskData.targetSize): float32 [B, targetSize], zero on filler rows. */
  target?: HostTensor;
  /** Rows that are real examples (the first `valid` rows). */
  valid: number;
  /**
   * Rows among the first `valid` whose image no longer decodes (replaced or truncated after the
   * up-front check): zero pixels, label IGNORE_LABEL; training skips them, evaluation drops them.
   */
  skipped?: SkippedRow[];
}

export interface SkippedRow {
  row: number;
  path: string;
  reason: string;
}

/** A task's data as the trainer sees it: split sizes and batches of model inputs and labels. */
export interface TaskData {
  /** Classification: the class names and each example's class. */
  classNames?: string[];
  /** Number of examples in a split. */
  size(split: SplitName): number;
  /** All labels of a split at once (classification), for metrics over the whole split. */
  labels?(split: SplitName): Int32Array;
  /** Sequence length of text batches (undefined for images). */
  seqLen?: number;
  /** Classes of the soft target every example carries (Batch.target), for tasks that train on one; absent for none. */
  targetSize?: number;
  /** Inputs for examples `indices` padded to `batchSize` rows; `augment` seeds train-time augmentation. */
  batch(split: SplitName, indices: ArrayLike<number>, batchSize: number, augment?: number): Promise<Batch>;
}

function labelTensor(labels: Int32Array, indices: ArrayLike<number>, B: number): HostTensor {
  const out = new BigInt64Array(B).fill(BigInt(IGNORE_LABEL));
  for (let i = 0; i < indices.length; i++) out[i] = BigInt(labels[indices[i]]);
  return { dtype: "int64", shape: [B], data: out };
}

function checkBatch(indices: ArrayLike<number>, B: number): void {
  if (indices.length < 1 || indices.length > B) throw new ConfigError(`a batch holds 1..${B} examples, got ${indices.length}`);
}

export interface ImagePixelSpec {
  channels: number;
  size: number;
  mean: number[];
  std: number[];
}

/** Pixels already at the model's size and channel count skip sharp: rescale and normalise only. */
function directPixels(img: RawImage, spec: ImagePixelSpec, out: Float32Array, offset: number): boolean {
  if (img.width !== spec.size || img.height !== spec.size || img.channels !== spec.channels) return false;
  const hw = spec.size * spec.size;
  for (let c = 0; c < spec.channels; c++) {
    for (let i = 0; i < hw; i++) out[offset + c * hw + i] = (img.data[i * spec.channels + c] / 255 - spec.mean[c]) / spec.std[c];
  }
  return true;
}

function greyscale(rgb: Float32Array, plane: number): Float32Array {
  const out = new Float32Array(plane);
  for (let i = 0; i < plane; i++) out[i] = (rgb[i] + rgb[plane + i] + rgb[2 * plane + i]) / 3;
  return out;
}

/** What image batches need of a processor (ImageProcessor; the embedded digits need none of its resizing). */
export type PixelProcessor = Pick<ImageProcessor, "augmentation" | "sampleAugment" | "process">;

/** TaskData for image classification from decoded splits and a model's image processor. */
export function imageTaskData(
  split: { train: ImageDataset; test: ImageDataset },
  processors: { train: PixelProcessor; test: PixelProcessor },
  spec: ImagePixelSpec,
): TaskData {
  const labels = { train: Int32Array.from(split.train.items, (x) => x.label), test: Int32Array.from(split.test.items, (x) => x.label) };
  const per = spec.channels * spec.size * spec.size;
  const one = async (item: ImageItem, s: SplitName, rng: Rng | undefined, out: Float32Array, offset: number) => {
    if ("pixels" in item && !rng && directPixels(item.pixels, spec, out, offset)) return;
    const proc = processors[s];
    const draw = rng ? proc.sampleAugment(rng) : undefined;
    let px = await proc.process("pixels" in item ? item.pixels : item.path, draw);
    if (spec.channels === 1 && px.length === 3 * per) px = greyscale(px, per); // the processor always yields RGB
    if (px.length !== per) {
      throw new ConfigError(
        `the image processor produced ${px.length} values per image but the model takes ${spec.channels}×${spec.size}×${spec.size}; set its size to the model's image_size`,
      );
    }
    out.set(px, offset);
  };
  return {
    classNames: split.train.classNames,
    size: (s) => split[s].items.length,
    labels: (s) => labels[s],
    async batch(s, indices, B, augment) {
      checkBatch(indices, B);
      const data = new Float32Array(B * per);
      const ds = split[s];
      const { colorJitter, horizontalFlip } = processors[s].augmentation;
      const augmented = augment !== undefined && s === "train" && (colorJitter !== undefined || (horizontalFlip ?? 0) > 0);
      const skipped: SkippedRow[] = [];
      await Promise.all(
        Array.from({ length: B }, (_, row) => {
          const idx = indices[row < indices.length ? row : 0];
          const item = ds.items[idx];
          const rng = augmented ? new Rng((augment! * 1000003 + idx) >>> 0) : undefined;
          return one(item, s, rng, data, row * per).catch((e: unknown) => {
            // a file that stopped decoding since the up-front check costs its example, not the run
            if (!(e instanceof ImageDecodeError && "path" in item)) throw e;
            if (row < indices.length) skipped.push({ row, path: item.path, reason: e.message });
          });
        }),
      );
      const labelsOut = labelTensor(labels[s], indices, B);
      for (const { row } of skipped) (labelsOut.data as BigInt64Array)[row] = BigInt(IGNORE_LABEL);
      return {
        inputs: { pixel_values: { dtype: "float32", shape: [B, spec.channels, spec.size, spec.size], data } },
        labels: labelsOut,
        valid: indices.length,
        ...(skipped.length ? { skipped: skipped.sort((a, b) => a.row - b.row) } : {}),
      };
    },
  };
}

/** Text is tokenised once up front, padded to the longest example (at most `maxLength`). */
export function textTaskData(split: { train: TextDataset; test: TextDataset }, tokenizer: TextTokenizer, maxLength: number): TaskData {
  const enc = (ds: TextDataset) => tokenizer.encodeBatch(ds.items, { maxLength, truncation: true });
  const tokens = { train: enc(split.train), test: enc(split.test) };
  const T = Math.max(tokens.train.shape[1], tokens.test.shape[1]);
  const pad = tokenizer.padId ?? 1;
  const labels = { train: Int32Array.from(split.train.items, (x) => x.label), test: Int32Array.from(split.test.items, (x) => x.label) };
  return {
    classNames: split.train.classNames,
    seqLen: T,
    size: (s) => split[s].items.length,
    labels: (s) => labels[s],
    async batch(s, indices, B) {
      checkBatch(indices, B);
      const src = tokens[s];
      const t0 = src.shape[1];
      const ids = new BigInt64Array(B * T).fill(BigInt(pad));
      const mask = new BigInt64Array(B * T);
      const types = new BigInt64Array(B * T);
      for (let row = 0; row < B; row++) {
        const i = indices[row < indices.length ? row : 0];
        for (let t = 0; t < t0; t++) {
          ids[row * T + t] = BigInt(src.inputIds[i * t0 + t]);
          mask[row * T + t] = BigInt(src.attentionMask[i * t0 + t]);
          types[row * T + t] = BigInt(src.tokenTypeIds[i * t0 + t]);
        }
      }
      const t = (data: BigInt64Array): HostTensor => ({ dtype: "int64", shape: [B, T], data });
      return {
        inputs: { input_ids: t(ids), attention_mask: t(mask), token_type_ids: t(types) },
        labels: labelTensor(labels[s], indices, B),
        valid: indices.length,
      };
    },
  };
}

/** Rows `rows` of `b` (first axis: the batch) put at rows `to` of `out`. */
function copyRows(out: Batch, b: Batch, rows: number[], to: number[]): void {
  const copy = (dst: HostTensor, src: HostTensor) => {
    const w = src.data.length / src.shape[0];
    rows.forEach((r, k) => (dst.data as Float32Array).set((src.data as Float32Array).subarray(r * w, (r + 1) * w), to[k] * w));
  };
  for (const [k, t] of Object.entries(out.inputs)) copy(t, b.inputs[k]);
  copy(out.labels, b.labels);
}

/**
 * Every example of `data` as its test split: the train examples, then the test ones (the train
 * split is empty). A batch spanning both is spliced row by row from one batch of each split.
 */
export function wholeAsTest(data: TaskData): TaskData {
  const nTrain = data.size("train");
  const n = nTrain + data.size("test");
  const labels = data.labels && (() => Int32Array.from([...data.labels!("train"), ...data.labels!("test")]));
  return {
    classNames: data.classNames,
    seqLen: data.seqLen,
    size: (s) => (s === "test" ? n : 0),
    ...(labels ? { labels: (s: SplitName) => (s === "test" ? labels() : new Int32Array(0)) } : {}),
    async batch(s, indices, B) {
      checkBatch(s === "test" ? indices : [], B);
      const idx = Array.from(indices);
      const rows = { train: [] as number[], test: [] as number[] };
      idx.forEach((i, r) => (i < nTrain ? rows.train : rows.test).push(r));
      const part = (split: SplitName) =>
        data.batch(
          split,
          rows[split].map((r) => idx[r] - (split === "test" ? nTrain : 0)),
          B,
        );
      if (!rows.test.length) return part("train");
      if (!rows.train.length) return part("test");
      const [train, test] = await Promise.all([part("train"), part("test")]);
      // rows past the last example keep the train batch's filler (label −100), which evaluation drops
      const clone = (t: HostTensor): HostTensor => ({ ...t, shape: [...t.shape], data: t.data.slice() });
      const out: Batch = {
        inputs: Object.fromEntries(Object.entries(train.inputs).map(([k, t]) => [k, clone(t)])),
        labels: clone(train.labels),
        valid: idx.length,
      };
      copyRows(out, train, [...rows.train.keys()], rows.train);
      copyRows(out, test, [...rows.test.keys()], rows.test);
      const skipped = [train, test].flatMap((b, j) => (b.skipped ?? []).map((x) => ({ ...x, row: rows[j ? "test" : "train"][x.row] })));
      return skipped.length ? { ...out, skipped: skipped.sort((a, b) => a.row - b.row) } : out;
    },
  };
}

/** A tokenised example with a label per token (−100: not scored) and, for encoders that take them, token types. */
export interface TokenRow {
  ids: ArrayLike<number>;
  labels: ArrayLike<number>;
  typeIds?: ArrayLike<number>;
  /** A soft target, sparse: its classes and their weights (every other class 0). */
  target?: SparseTarget;
}

/**
 * Examples `indices` of `rows` as a batch of B right-padded rows of length T: input ids (`padId`
 * after each example), a 0/1 attention mask, token types when `withTypes`, and labels [B, T]
 * (−100 on padding; filler rows repeat the first example with every label −100); with
 * `targetSize`, each row's soft target as a dense target [B, targetSize] (filler rows 0).
 */
export function tokenRowsBatch(
  rows: readonly TokenRow[],
  indices: ArrayLike<number>,
  B: number,
  T: number,
  padId: number,
  withTypes: boolean,
  targetSize?: number,
): Batch {
  checkBatch(indices, B);
  const ids = new BigInt64Array(B * T).fill(BigInt(padId));
  const mask = new BigInt64Array(B * T);
  const types = new BigInt64Array(withTypes ? B * T : 0);
  const labels = new BigInt64Array(B * T).fill(BigInt(IGNORE_LABEL));
  for (let row = 0; row < B; row++) {
    const r = rows[indices[row < indices.length ? row : 0]];
    for (let t = 0; t < r.ids.length; t++) {
      ids[row * T + t] = BigInt(r.ids[t]);
      mask[row * T + t] = 1n;
      if (withTypes) types[row * T + t] = BigInt(r.typeIds![t]);
      if (row < indices.length) labels[row * T + t] = BigInt(r.labels[t]);
    }
  }
  const t = (data: BigInt64Array): HostTensor => ({ dtype: "int64", shape: [B, T], data });
  return {
    inputs: { input_ids: t(ids), attention_mask: t(mask), ...(withTypes ? { token_type_ids: t(types) } : {}) },
    labels: t(labels),
    ...(targetSize !== undefined && { target: denseTargets(rows, indices, B, targetSize) }),
    valid: indices.length,
  };
}

/** The soft targets of examples `indices` as float32 [B, size]; rows past them and rows without a target are 0. */
function denseTargets(rows: readonly TokenRow[], indices: ArrayLike<number>, B: number, size: number): HostTensor {
  const data = new Float32Array(B * size);
  for (let row = 0; row < indices.length; row++) {
    const target = rows[indices[row]].target;
    if (!target) continue;
    for (let k = 0; k < target.ids.length; k++) data[row * size + target.ids[k]] += target.weights[k];
  }
  return { dtype: "float32", shape: [B, size], data };
}

/**
 * Causal-LM examples as right-padded rows of one length (the longest example): ids, a 0/1
 * attention mask and labels (−100 on padding and untrained positions; filler rows all −100);
 * with `targetSize`, the examples' soft targets over that many classes too.
 */
export function lmTaskData(split: { train: LmExample[]; test: LmExample[] }, padId: number, targetSize?: number): TaskData {
  const T = Math.max(...split.train.map((e) => e.ids.length), ...split.test.map((e) => e.ids.length));
  return {
    seqLen: T,
    ...(targetSize !== undefined && { targetSize }),
    size: (s) => split[s].length,
    batch: async (s, indices, B) => tokenRowsBatch(split[s], indices, B, T, padId, false, targetSize),
  };
}
