/**
 * Image → model input: decode, force RGB, resize, centre-crop, optional train-time flip and colour
 * jitter, rescale, normalise, emitted as a Float32Array in CHW layout [3, H, W].
 *
 * Decoding and resizing run in sharp (libvips, on libuv's thread pool, so several images proceed
 * while JavaScript runs); crop, flip, jitter and the per-pixel affine run in one JS pass over the
 * small resized image. Semantics follow HuggingFace image processors (`preprocessor_config.json`)
 * and, for augmentation, the torchvision pipelines of the paper (see `paperImageProcessor`).
 */
import sharp, { type OutputInfo, type Sharp } from "sharp";
import { ConfigError, DataError, ImageDecodeError } from "../errors.ts";
import type { Rng } from "../tensor/random.ts";
import { applyJitter, sampleJitter, validateJitter, type ColorJitterOptions, type JitterDraw } from "./color-jitter.ts";
import type { RawImage } from "./types.ts";

/** Resampling filter used when resizing. */
export type Resample = "nearest" | "bilinear" | "bicubic" | "lanczos";
/** An image size in pixels. */
export type Size = { height: number; width: number };
type Rgb = [number, number, number];

/** The settings of a HuggingFace image processor (`preprocessor_config.json`), parsed. */
export interface ImageProcessorConfig {
  /** Exact output of the resize (`fit: fill`, aspect not kept), or its shortest edge (aspect kept). */
  resize: Size | { shortestEdge: number } | null;
  resample: Resample;
  /** Centre crop after the resize, placed as torchvision's CenterCrop places it. */
  centerCrop: Size | null;
  /** Pixel value multiplier (HF `rescale_factor`, 1/255 → [0, 1]); null keeps 0..255. */
  rescaleFactor: number | null;
  /** Per-channel (x − mean) / std after rescaling; null skips normalisation. */
  mean: Rgb | null;
  std: Rgb | null;
}

/** Train-time randomness; each image draws its own `AugmentDraw` from a seeded Rng. */
export interface Augmentation {
  colorJitter?: ColorJitterOptions;
  /** Probability of a horizontal flip (torchvision RandomHorizontalFlip uses 0.5). */
  horizontalFlip?: number;
}

/** The random augmentation drawn for one image, kept so a resumed run replays it. */
export interface AugmentDraw {
  jitter: JitterDraw | null;
  flip: boolean;
}

/** A file path, encoded bytes (JPEG/PNG/…), or decoded 8-bit pixels. */
export type ImageInput = string | Buffer | RawImage;

/** `google/vit-base-patch16-224`'s processor: bilinear 224×224, [0, 1], mean = std = 0.5. */
export const VIT_DEFAULTS: ImageProcessorConfig = {
  resize: { height: 224, width: 224 },
  resample: "bilinear",
  centerCrop: null,
  rescaleFactor: 1 / 255,
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};

// PIL's resampling codes as HF stores them; libvips has no box (4) or hamming (5) filter.
const PIL_RESAMPLE: Record<number, Resample> = { 0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic" };
const SHARP_KERNEL = { nearest: "nearest", bilinear: "linear", bicubic: "cubic", lanczos: "lanczos3" } as const;

/** Turns images into a model's pixel values the way its HuggingFace image processor does (resize, crop, rescale, normalise). */
export class ImageProcessor {
  readonly config: ImageProcessorConfig;
  readonly augmentation: Augmentation;

  constructor(config: Partial<ImageProcessorConfig> = {}, augmentation: Augmentation = {}) {
    this.config = { ...VIT_DEFAULTS, ...config };
    this.augmentation = augmentation;
    if (augmentation.colorJitter) validateJitter(augmentation.colorJitter);
    const flip = augmentation.horizontalFlip ?? 0;
    if (!(flip >= 0 && flip <= 1)) {
      throw new ConfigError(`horizontalFlip is a probability in [0, 1]; got ${flip}.`);
    }
  }

  /**
   * From a parsed HF `preprocessor_config.json`; `undefined` (no file) gives the ViT defaults.
   * @example ImageProcessor.fromPreprocessorConfig(JSON.parse(fs.readFileSync(p, "utf8")))
   */
  static fromPreprocessorConfig(json?: unknown, augmentation: Augmentation = {}): ImageProcessor {
    return new ImageProcessor(json === undefined ? {} : parseHfConfig(json), augmentation);
  }

  /** Output [height, width], or null when it depends on the input (shortest-edge resize, no crop). */
  get outputSize(): Size | null {
    const { resize, centerCrop } = this.config;
    if (centerCrop) return centerCrop;
    return resize && "height" in resize ? resize : null;
  }

  /** Draw one image's augmentation; synchronous so the draw order never depends on I/O timing. */
  sampleAugment(rng: Rng): AugmentDraw {
    const { colorJitter, horizontalFlip = 0 } = this.augmentation;
    const jitter = colorJitter ? sampleJitter(colorJitter, rng) : null;
    return { jitter, flip: horizontalFlip > 0 && rng.uniform() < horizontalFlip };
  }

  /** Preprocess one image to Float32Array [3, H, W]; `draw` applies train-time augmentation. */
  async process(input: ImageInput, draw?: AugmentDraw): Promise<Float32Array> {
    const { data, info } = await this.#decodeResized(input);
    const crop = this.config.centerCrop ?? { height: info.height, width: info.width };
    if (crop.height > info.height || crop.width > info.width) {
      throw new DataError(
        `A centre crop must fit inside the resized image; ${describe(input)} is ` +
          `${info.width}×${info.height} after resizing, crop is ${crop.width}×${crop.height}. ` +
          `Resize to at least the crop size.`,
      );
    }
    // torchvision CenterCrop: top = round((H − h) / 2) with Python's round-half-to-even
    const top = roundHalfEven((info.height - crop.height) / 2);
    const left = roundHalfEven((info.width - crop.width) / 2);
    const { height: h, width: w } = crop;
    const rgb = new Float32Array(h * w * 3); // HWC in [0, 1]
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const sx = left + (draw?.flip ? w - 1 - x : x);
        const src = ((top + y) * info.width + sx) * 3;
        const dst = (y * w + x) * 3;
        for (let c = 0; c < 3; c++) rgb[dst + c] = data[src + c] / 255;
      }
    }
    if (draw?.jitter) applyJitter(rgb, draw.jitter);
    return this.#toChw(rgb, h, w);
  }

  async #decodeResized(input: ImageInput): Promise<{ data: Buffer; info: OutputInfo }> {
    try {
      const out = await this.#pipeline(input).raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
      if (out.info.channels !== 3) throw new Error(`decoded to ${out.info.channels} channels, not 3`);
      return out;
    } catch (e) {
      // libvips reports over several lines; the message is one line, as the CLI prints it
      const reason = (e as Error).message.trim().replace(/\s+/g, " ");
      throw new ImageDecodeError(`An image must decode to RGB pixels; ${describe(input)} failed: ${reason}. Remove or re-encode the file.`);
    }
  }

  /** sharp steps up to the resize; raw pixel arrays throw here (synchronously) on bad sizes. */
  #pipeline(input: ImageInput): Sharp {
    const img =
      typeof input === "string" || Buffer.isBuffer(input)
        ? sharp(input)
        : sharp(input.data, { raw: { width: input.width, height: input.height, channels: input.channels } });
    const rgbImg = img.removeAlpha().toColourspace("srgb");
    const { resize, resample } = this.config;
    // fastShrinkOnLoad off: JPEG shrink-on-load skips pixels PIL would average. Downsizing then
    // matches PIL's antialiased filters inside the image (edges differ by a level or two);
    // upsizing (EuroSAT 64 → 300) comes out shifted by about half an output pixel against PIL
    // (measured; libvips#4841).
    const opts = { kernel: SHARP_KERNEL[resample], fastShrinkOnLoad: false };
    if (resize && "shortestEdge" in resize) {
      return rgbImg.resize(resize.shortestEdge, resize.shortestEdge, { ...opts, fit: "outside" });
    }
    return resize ? rgbImg.resize(resize.width, resize.height, { ...opts, fit: "fill" }) : rgbImg;
  }

  #toChw(rgb: Float32Array, h: number, w: number): Float32Array {
    const { rescaleFactor, mean, std } = this.config;
    // values are in [0, 1]; HF rescales 0..255 by rescaleFactor, so scale = 255 · factor
    const scale = rescaleFactor === null ? 255 : 255 * rescaleFactor;
    const out = new Float32Array(3 * h * w);
    const plane = h * w;
    for (let c = 0; c < 3; c++) {
      const m = mean ? mean[c] : 0;
      const s = std ? std[c] : 1;
      for (let p = 0; p < plane; p++) out[c * plane + p] = (rgb[p * 3 + c] * scale - m) / s;
    }
    return out;
  }
}

/**
 * The paper's torchvision pipelines (no mean/std normalisation for either dataset):
 * EuroSAT: Resize(300×300) → CenterCrop(224) → [train: ColorJitter(0.4,0.4,0.4,0.4) p=0.5 →
 * RandomHorizontalFlip] → ToTensor; DTD: Resize(224×224) → ToTensor. torchvision's default
 * Resize interpolation is bilinear.
 */
export function paperImageProcessor(dataset: "eurosat" | "dtd", train: boolean): ImageProcessor {
  const base = { resample: "bilinear" as const, rescaleFactor: 1 / 255, mean: null, std: null };
  if (dataset === "dtd") {
    return new ImageProcessor({ ...base, resize: { height: 224, width: 224 }, centerCrop: null });
  }
  const augmentation: Augmentation = train ? { colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4, p: 0.5 }, horizontalFlip: 0.5 } : {};
  return new ImageProcessor({ ...base, resize: { height: 300, width: 300 }, centerCrop: { height: 224, width: 224 } }, augmentation);
}

/** Map HF's snake_case processor fields to our config, rejecting values we cannot honour. */
function parseHfConfig(json: unknown): ImageProcessorConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`preprocessor_config.json must hold a JSON object; got ${JSON.stringify(json)}.`);
  }
  const j = json as Record<string, unknown>;
  const flag = (key: string, dflt: boolean) => {
    const v = j[key] ?? dflt;
    if (typeof v !== "boolean") throw bad(key, v, "true or false");
    return v;
  };
  const resampleCode = j.resample ?? 2;
  const resample = typeof resampleCode === "number" ? PIL_RESAMPLE[resampleCode] : undefined;
  if (!resample) {
    throw bad("resample", resampleCode, "a PIL code 0 (nearest), 1 (lanczos), 2 (bilinear) or 3 (bicubic)");
  }
  const normalize = flag("do_normalize", true);
  return {
    resize: flag("do_resize", true) ? parseSize(j.size ?? 224, "size") : null,
    resample,
    centerCrop: flag("do_center_crop", false) ? requireFixed(parseSize(j.crop_size ?? 224, "crop_size")) : null,
    rescaleFactor: flag("do_rescale", true) ? positive(j.rescale_factor ?? 1 / 255, "rescale_factor") : null,
    mean: normalize ? rgb(j.image_mean ?? 0.5, "image_mean") : null,
    std: normalize ? rgb(j.image_std ?? 0.5, "image_std") : null,
  };
}

function parseSize(v: unknown, key: string): Size | { shortestEdge: number } {
  if (typeof v === "number") return { height: positive(v, key), width: positive(v, key) };
  if (typeof v === "object" && v !== null) {
    const s = v as Record<string, unknown>;
    if (s.height !== undefined && s.width !== undefined) {
      return { height: positive(s.height, `${key}.height`), width: positive(s.width, `${key}.width`) };
    }
    if (s.shortest_edge !== undefined) return { shortestEdge: positive(s.shortest_edge, `${key}.shortest_edge`) };
  }
  throw bad(key, v, "a number, {height, width} or {shortest_edge}");
}

function requireFixed(s: Size | { shortestEdge: number }): Size {
  if ("height" in s) return s;
  throw bad("crop_size", s, "{height, width}");
}

function positive(v: unknown, key: string): number {
  if (typeof v !== "number" || !(v > 0)) throw bad(key, v, "a positive number");
  return v;
}

function rgb(v: unknown, key: string): Rgb {
  if (typeof v === "number") return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number")) return v as Rgb;
  throw bad(key, v, "a number or 3 numbers (R, G, B)");
}

function bad(key: string, value: unknown, expected: string): ConfigError {
  return new ConfigError(`preprocessor_config.json field "${key}" must be ${expected}; got ${JSON.stringify(value)}.`);
}

function describe(input: ImageInput): string {
  if (typeof input === "string") return input;
  if (Buffer.isBuffer(input)) return `an encoded buffer of ${input.length} bytes`;
  return `a ${input.width}×${input.height}×${input.channels} pixel array`;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
