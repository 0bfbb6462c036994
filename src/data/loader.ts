/**
 * Batching: a seeded, resumable epoch sampler over example indices, an image batch loader that
 * prefetches the next batch while the caller trains on the current one, and text collation.
 */
import { ConfigError } from "../errors.ts";
import { Rng, type RngState } from "../tensor/random.ts";
import type { ImageProcessor } from "./image-preprocess.ts";
import type { IdArray, IdDType, TextTokenizer, TokenBatch, BatchOptions } from "./tokenize.ts";
import type { ImageDataset, TextDataset } from "./types.ts";

/** How a sampler orders examples: batch size, seed, shuffling. */
export interface SamplerOptions {
  batchSize: number;
  /** Reshuffle every epoch (default true); false walks 0..n-1 in order (evaluation). */
  shuffle?: boolean;
  /** Leave out a last batch smaller than batchSize (default false, as torch's DataLoader). */
  dropLast?: boolean;
  seed?: number;
}

/**
 * Where a sampler stands: `position` examples of epoch `epoch` are consumed, and `rng` is the
 * generator state the epoch's permutation was drawn from, so a restore redraws the same order.
 */
export interface SamplerState {
  epoch: number;
  position: number;
  rng: RngState;
}

/** The example indices of one batch, with where it falls in training. */
export interface IndexBatch {
  epoch: number;
  /** Batch number within the epoch. */
  step: number;
  indices: Int32Array;
}

/** Endless batches of example indices, epoch after epoch; `state()` saves the position. */
export class EpochSampler {
  readonly size: number;
  readonly options: Required<SamplerOptions>;
  #rng: Rng;
  #epochStart: RngState;
  #order: Int32Array;
  #epoch: number;
  #position: number;

  constructor(size: number, opts: SamplerOptions, state?: SamplerState) {
    const o = { shuffle: true, dropLast: false, seed: 0, ...opts };
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
      throw new ConfigError(`batchSize must be a positive integer; got ${o.batchSize}.`);
    }
    if (size < 1 || (o.dropLast && size < o.batchSize)) {
      throw new ConfigError(
        `A dataset of ${size} examples yields no ${o.dropLast ? "full " : ""}batch of ${o.batchSize}. ` +
          `Lower batchSize${o.dropLast ? " or turn dropLast off" : ""}.`,
      );
    }
    this.size = size;
    this.options = o;
    this.#rng = state ? Rng.fromState(state.rng) : new Rng(o.seed);
    this.#epoch = state?.epoch ?? 0;
    this.#position = state?.position ?? 0;
    this.#epochStart = this.#rng.state();
    this.#order = this.#drawOrder();
  }

  /** Batches per epoch (what a per-epoch schedule or evaluation counts). */
  get batchesPerEpoch(): number {
    const { batchSize, dropLast } = this.options;
    return dropLast ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
  }

  /** Where the sampler stands, to save in a checkpoint and restore. */
  state(): SamplerState {
    return { epoch: this.#epoch, position: this.#position, rng: [...this.#epochStart] as RngState };
  }

  /** The next batch of indices (a new epoch starts when one ends). */
  next(): IndexBatch {
    const { batchSize, dropLast } = this.options;
    const epochLength = dropLast ? this.batchesPerEpoch * batchSize : this.size;
    if (this.#position >= epochLength) {
      this.#epoch++;
      this.#position = 0;
      this.#epochStart = this.#rng.state();
      this.#order = this.#drawOrder();
    }
    const start = this.#position;
    const indices = this.#order.slice(start, Math.min(start + batchSize, this.size));
    this.#position += indices.length;
    return { epoch: this.#epoch, step: start / batchSize, indices };
  }

  #drawOrder(): Int32Array {
    if (this.options.shuffle) return this.#rng.permutation(this.size);
    return Int32Array.from({ length: this.size }, (_, i) => i);
  }
}

/** A batch of preprocessed images and their labels. */
export interface ImageBatch extends IndexBatch {
  /** [B, 3, H, W] */
  pixels: Float32Array;
  labels: Int32Array;
  shape: [number, number, number, number];
}

/** How an image loader batches, augments and prefetches. */
export interface ImageLoaderOptions {
  /** Apply the processor's augmentation (train); off for evaluation. */
  augment?: boolean;
  /** Seed of the per-image augmentation draws. */
  seed?: number;
}

/**
 * Decodes and preprocesses image batches with sharp, one batch ahead: `next()` starts the
 * following batch before returning the current one, so its decoding runs on libuv's threads while
 * the caller's training step runs. Augmentation draws depend only on (seed, epoch, position), so
 * a resumed run sees the same images with the same jitter.
 */
export class ImageBatchLoader {
  readonly dataset: ImageDataset;
  readonly processor: ImageProcessor;
  readonly sampler: EpochSampler;
  readonly #augment: boolean;
  readonly #seed: number;
  readonly #size: { height: number; width: number };
  #pending: { promise: Promise<ImageBatch>; stateBefore: SamplerState } | null = null;

  constructor(dataset: ImageDataset, processor: ImageProcessor, sampler: EpochSampler, opts: ImageLoaderOptions = {}) {
    const size = processor.outputSize;
    if (!size) {
      throw new ConfigError(
        `Batching needs one output size for every image, but the processor's depends on the input ` +
          `(resize: ${JSON.stringify(processor.config.resize)}, no centerCrop). Set a fixed resize or a centerCrop.`,
      );
    }
    if (sampler.size !== dataset.items.length) {
      throw new ConfigError(
        `The sampler must cover the dataset: it has ${sampler.size} indices, the dataset ` +
          `${dataset.items.length} items. Build the sampler from dataset.items.length.`,
      );
    }
    this.dataset = dataset;
    this.processor = processor;
    this.sampler = sampler;
    this.#augment = opts.augment ?? false;
    this.#seed = opts.seed ?? 0;
    this.#size = size;
  }

  /** The sampler position of the next batch `next()` will return (save it in checkpoints). */
  state(): SamplerState {
    return this.#pending?.stateBefore ?? this.sampler.state();
  }

  /** The next batch (prefetched while the previous one trained). */
  async next(): Promise<ImageBatch> {
    const current = this.#pending ?? this.#launch();
    this.#pending = this.#launch();
    return current.promise;
  }

  #launch(): { promise: Promise<ImageBatch>; stateBefore: SamplerState } {
    const stateBefore = this.sampler.state();
    const batch = this.sampler.next();
    const { height: H, width: W } = this.#size;
    const B = batch.indices.length;
    const pixels = new Float32Array(B * 3 * H * W);
    const labels = new Int32Array(B);
    const jobs = Array.from(batch.indices, (idx, i) => {
      const item = this.dataset.items[idx];
      labels[i] = item.label;
      // drawn synchronously, in batch order, from a generator keyed by the example's slot
      const rng = new Rng(mixSeed(this.#seed, batch.epoch, batch.step * this.sampler.options.batchSize + i));
      const draw = this.#augment ? this.processor.sampleAugment(rng) : undefined;
      const input = "path" in item ? item.path : item.pixels;
      return this.processor.process(input, draw).then((chw) => pixels.set(chw, i * 3 * H * W));
    });
    const promise = Promise.all(jobs).then((): ImageBatch => ({ ...batch, pixels, labels, shape: [B, 3, H, W] }));
    // A prefetched batch may fail before anyone awaits it; the error reaches the awaiting next().
    promise.catch(() => {});
    return { promise, stateBefore };
  }
}

function mixSeed(seed: number, epoch: number, slot: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ epoch ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ slot ^ (h >>> 13), 0x27d4eb2f);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A batch of token ids, attention masks and labels. */
export interface TextBatch<A extends BigInt64Array | Int32Array> extends IndexBatch {
  tokens: TokenBatch<A>;
  labels: Int32Array;
}

/** Tokenise the examples of `batch` (text collation is fast enough to run inline). */
export function textBatch<D extends IdDType = "int64">(
  dataset: TextDataset,
  tokenizer: TextTokenizer,
  batch: IndexBatch,
  opts: BatchOptions<D> = {},
): TextBatch<IdArray<D>> {
  const items = Array.from(batch.indices, (i) => dataset.items[i]);
  return {
    ...batch,
    tokens: tokenizer.encodeBatch(items, opts),
    labels: Int32Array.from(items, (x) => x.label),
  };
}
