/**
 * torchvision's `ColorJitter` (tensor semantics), applied in JavaScript to an RGB image with
 * values in [0, 1], interleaved HWC.
 *
 * Why not sharp's `modulate`/`linear`: modulate works in LCh, so its brightness, saturation and
 * hue differ from torchvision's RGB/HSV formulas, and contrast around the image mean needs the
 * mean first. The exact formulas cost ~5 ms of JavaScript per 224×224 image (measured), so we
 * use them:
 *
 *   brightness f:  x ← clamp(f · x)
 *   contrast f:    x ← clamp(f · x + (1 − f) · mean(gray(image)))
 *   saturation f:  x ← clamp(f · x + (1 − f) · gray(pixel))
 *   hue h:         RGB → HSV, H ← (H + h) mod 1, HSV → RGB
 *
 * with gray = 0.299 R + 0.587 G + 0.114 B, the four applied in a random order, factors drawn as
 * torchvision does (uniform in [max(0, 1 − v), 1 + v], hue uniform in [−v, v]). The paper's
 * EuroSAT pipeline applies it to PIL images before `ToTensor`; PIL rounds to 8 bits after each
 * step (and rotates hue on an 8-bit H channel), we do not: small rounding-level differences.
 */
import { ConfigError } from "../errors.ts";
import type { Rng } from "../tensor/random.ts";

/** Strengths of torchvision-style colour jitter (brightness, contrast, saturation, hue) for augmentation. */
export interface ColorJitterOptions {
  brightness: number;
  contrast: number;
  saturation: number;
  /** At most 0.5 (half the hue circle), as in torchvision. */
  hue: number;
  /** Probability of jittering an image at all (the paper wraps ColorJitter in RandomApply p=0.5). */
  p: number;
}

type Adjustment = "brightness" | "contrast" | "saturation" | "hue";

/** One image's drawn jitter; factors equal to the identity (1, 1, 1, 0) leave the image as is. */
export interface JitterDraw {
  order: Adjustment[];
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

const ADJUSTMENTS: Adjustment[] = ["brightness", "contrast", "saturation", "hue"];

export function validateJitter(opts: ColorJitterOptions): void {
  for (const key of ["brightness", "contrast", "saturation", "p"] as const) {
    if (!(opts[key] >= 0)) {
      throw new ConfigError(`colorJitter.${key} must be ≥ 0; got ${opts[key]}.`);
    }
  }
  if (!(opts.hue >= 0 && opts.hue <= 0.5)) {
    throw new ConfigError(`colorJitter.hue must lie in [0, 0.5] (a fraction of the hue circle); got ${opts.hue}.`);
  }
  if (opts.p > 1) throw new ConfigError(`colorJitter.p is a probability; got ${opts.p}.`);
}

/** Draw whether and how to jitter one image; null when the p-coin says no. */
export function sampleJitter(opts: ColorJitterOptions, rng: Rng): JitterDraw | null {
  if (rng.uniform() >= opts.p) return null;
  const perm = rng.permutation(4);
  const factor = (v: number) => Math.max(0, 1 - v) + rng.uniform() * (1 + v - Math.max(0, 1 - v));
  return {
    order: Array.from(perm, (i) => ADJUSTMENTS[i]),
    brightness: factor(opts.brightness),
    contrast: factor(opts.contrast),
    saturation: factor(opts.saturation),
    hue: (2 * rng.uniform() - 1) * opts.hue,
  };
}

/** Apply `draw` in place to `rgb` (HWC, 3 channels, values in [0, 1]). */
export function applyJitter(rgb: Float32Array, draw: JitterDraw): void {
  for (const step of draw.order) {
    if (step === "brightness") blend(rgb, draw.brightness, 0);
    else if (step === "contrast") blend(rgb, draw.contrast, meanGray(rgb));
    else if (step === "saturation") blend(rgb, draw.saturation, 0, true);
    else shiftHue(rgb, draw.hue);
  }
}

function gray(rgb: Float32Array, p: number): number {
  return 0.299 * rgb[p] + 0.587 * rgb[p + 1] + 0.114 * rgb[p + 2];
}

function meanGray(rgb: Float32Array): number {
  let sum = 0;
  for (let p = 0; p < rgb.length; p += 3) sum += gray(rgb, p);
  return sum / (rgb.length / 3);
}

/**
 * x ← clamp(f·x + (1−f)·ref), the blend all three linear adjustments share; ref is a constant
 * (0 for brightness, the mean grey for contrast) or, with `perPixelGray`, each pixel's grey.
 */
function blend(rgb: Float32Array, f: number, ref: number, perPixelGray = false): void {
  for (let p = 0; p < rgb.length; p += 3) {
    const o = (1 - f) * (perPixelGray ? gray(rgb, p) : ref);
    rgb[p] = clamp01(f * rgb[p] + o);
    rgb[p + 1] = clamp01(f * rgb[p + 1] + o);
    rgb[p + 2] = clamp01(f * rgb[p + 2] + o);
  }
}

function shiftHue(rgb: Float32Array, shift: number): void {
  if (shift === 0) return;
  for (let p = 0; p < rgb.length; p += 3) {
    const r = rgb[p];
    const g = rgb[p + 1];
    const b = rgb[p + 2];
    const max = r > g ? Math.max(r, b) : Math.max(g, b);
    const min = r < g ? Math.min(r, b) : Math.min(g, b);
    const chroma = max - min;
    if (chroma === 0) continue; // grey pixels have no hue to rotate
    let h6: number; // hue in sextants, [0, 6)
    if (max === r) h6 = (g - b) / chroma;
    else if (max === g) h6 = (b - r) / chroma + 2;
    else h6 = (r - g) / chroma + 4;
    h6 = (((h6 + shift * 6) % 6) + 6) % 6;
    // HSV → RGB keeping value and chroma: channel = v − c·clamp(min(k, 4 − k), 0, 1), k = (n + h6) mod 6
    rgb[p] = max - chroma * hueRamp((5 + h6) % 6);
    rgb[p + 1] = max - chroma * hueRamp((3 + h6) % 6);
    rgb[p + 2] = max - chroma * hueRamp((1 + h6) % 6);
  }
}

function hueRamp(k: number): number {
  const m = Math.min(k, 4 - k);
  return m < 0 ? 0 : Math.min(m, 1);
}

function clamp01(x: number): number {
  return x < 0 ? 0 : Math.min(x, 1);
}
