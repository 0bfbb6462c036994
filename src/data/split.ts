/**
 * Seeded train/test splits and subsets of an in-memory dataset.
 *
 * The paper splits EuroSAT with `torch.utils.data.random_split(ds, [0.8, 0.2])` and takes a
 * random 1000-image subset of DTD's train list. Torch's generator cannot be reproduced here, so
 * the same protocol is followed with our own seeded `Rng`: same sizes, different draw.
 */
import { ConfigError } from "../errors.ts";
import { Rng } from "../tensor/random.ts";
import type { Dataset, Split } from "./types.ts";

/** How to cut a dataset into train and test parts (fraction and seed). */
export interface SplitOptions {
  /** Share of the examples that go to train; the paper uses 0.8 for EuroSAT. */
  trainFraction?: number;
  /** Seed of the draw; the same seed and dataset give the same split. */
  seed?: number;
  /** Split each class separately so both parts keep the class proportions (the paper does not). */
  stratify?: boolean;
}

/** A copy of `ds` holding the items at `indices`, in that order. */
export function takeItems<D extends Dataset>(ds: D, indices: ArrayLike<number>): D {
  const items = Array.from(indices, (i) => ds.items[i]);
  return { ...ds, items } as D;
}

/**
 * A seeded random subset of `count` items (the paper's "1000 random DTD train images").
 * Indices are kept in ascending order: the epoch sampler does the shuffling.
 */
export function randomSubset<D extends Dataset>(ds: D, count: number, seed = 0): D {
  if (!Number.isInteger(count) || count < 1 || count > ds.items.length) {
    throw new ConfigError(
      `A subset size must be an integer in [1, ${ds.items.length}] (the dataset's size); ` +
        `got ${count}. Lower the subset size or omit it to use every example.`,
    );
  }
  const picked = new Rng(seed).permutation(ds.items.length).slice(0, count);
  return takeItems(ds, picked.sort());
}

/**
 * Split `ds` into train and test. Train gets `round(n · trainFraction)` items (per class when
 * stratified). Files skipped while loading `ds` are reported once, on the train part.
 */
export function splitDataset<D extends Dataset>(ds: D, opts: SplitOptions = {}): Split<D> {
  const fraction = opts.trainFraction ?? 0.8;
  if (!(fraction > 0 && fraction < 1)) {
    throw new ConfigError(`trainFraction must lie strictly between 0 and 1; got ${fraction}. The paper uses 0.8.`);
  }
  const rng = new Rng(opts.seed ?? 0);
  const groups = opts.stratify ? indicesByLabel(ds) : [ds.items.map((_, i) => i)];
  const train: number[] = [];
  const test: number[] = [];
  for (const group of groups) {
    const order = rng.permutation(group.length);
    const nTrain = Math.round(group.length * fraction);
    order.forEach((j, rank) => (rank < nTrain ? train : test).push(group[j]));
  }
  const byIndex = (a: number, b: number) => a - b;
  const testPart = takeItems(ds, test.sort(byIndex));
  if (testPart.kind === "image") testPart.skipped = [];
  return { train: takeItems(ds, train.sort(byIndex)), test: testPart };
}

function indicesByLabel(ds: Dataset): number[][] {
  const groups = ds.classNames.map((): number[] => []);
  ds.items.forEach((item, i) => groups[item.label].push(i));
  return groups;
}
