/** Datasets, image preprocessing, tokenisation and batching (re-exported by src/index.ts). */
export type { Dataset, ImageDataset, ImageItem, RawImage, SkippedFile, Split, TextDataset, TextItem, WarnFn } from "./types.ts";
export { checkDataset } from "./dataset-checks.ts";
export { randomSubset, splitDataset, takeItems, type SplitOptions } from "./split.ts";
export type { ColorJitterOptions, JitterDraw } from "./color-jitter.ts";
export {
  ImageProcessor,
  paperImageProcessor,
  VIT_DEFAULTS,
  type AugmentDraw,
  type Augmentation,
  type ImageInput,
  type ImageProcessorConfig,
  type Resample,
  type Size,
} from "./image-preprocess.ts";
export { loadDtd, loadImageFolder, loadImageFolderSplit, type DtdOptions, type ImageLoadOptions } from "./image-datasets.ts";
export { loadCifar10, loadMnist } from "./pixel-datasets.ts";
export { loadGlue, loadTextTable, readGlueTsv, readTextTable, type GlueTask, type TableOptions } from "./text-datasets.ts";
export { parseCsv, type CsvRecord } from "./csv.ts";
export {
  TextTokenizer,
  longestFirst,
  type BatchOptions,
  type IdArray,
  type IdDType,
  type TextInput,
  type TokenBatch,
  type TokenIds,
  type TruncationOptions,
} from "./tokenize.ts";
export {
  EpochSampler,
  ImageBatchLoader,
  textBatch,
  type ImageBatch,
  type ImageLoaderOptions,
  type IndexBatch,
  type SamplerOptions,
  type SamplerState,
  type TextBatch,
} from "./loader.ts";
