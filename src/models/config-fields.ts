/** Reading typed fields from a HuggingFace config.json with errors that name the file and field. */
import { FormatError } from "../errors.ts";

export type Json = Record<string, unknown>;

/** Largest size or count a config field may claim (16 M): beyond every real model, below what would exhaust memory. */
export const MAX_SIZE = 2 ** 24;

/** Most blocks a config may claim: real models have a few hundred at most, and every count of sites, groups and parameters grows with it. */
export const MAX_LAYERS = 4096;

/** Ranges shared by the families' configs. */
export const PROBABILITY = { min: 0, max: 1, open: "max" } as const;
export const EPSILON = { min: 0, max: 1, open: "min" } as const;

export class ConfigReader {
  constructor(
    readonly raw: Json,
    readonly source: string,
  ) {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new FormatError(`${source}: must hold a JSON object of model settings, found ${JSON.stringify(raw)?.slice(0, 40)}`);
  }

  #fail(field: string, want: string, got: unknown): never {
    const seen = got === undefined ? "it is missing" : `found ${JSON.stringify(got)}`;
    throw new FormatError(`${this.source}: field "${field}" must be ${want}, but ${seen}`);
  }

  /** Sizes and counts: an integer in [min, max]; the default cap (2^24) keeps a hostile config from sizing any buffer. */
  int(field: string, fallback?: number, min = 1, max = MAX_SIZE): number {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) this.#fail(field, `an integer ≥ ${min}`, this.raw[field]);
    if (v > max) this.#fail(field, `an integer ≤ ${max}`, v);
    return v;
  }

  /** A finite number, within the range when one is given (`open` excludes both ends). */
  num(field: string, fallback?: number, range?: { min: number; max: number; open?: "min" | "max" | "both" }): number {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) this.#fail(field, "a finite number", this.raw[field]);
    if (range) {
      const { min, max, open } = range;
      const lowOk = open === "min" || open === "both" ? v > min : v >= min;
      const highOk = open === "max" || open === "both" ? v < max : v <= max;
      const lo = open === "min" || open === "both" ? "(" : "[";
      const hi = open === "max" || open === "both" ? ")" : "]";
      if (!lowOk || !highOk) this.#fail(field, `a number in ${lo}${min}, ${max}${hi}`, v);
    }
    return v;
  }

  bool(field: string, fallback?: boolean): boolean {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "boolean") this.#fail(field, "true or false", this.raw[field]);
    return v;
  }

  str(field: string, fallback?: string): string {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "string") this.#fail(field, "a string", this.raw[field]);
    return v;
  }

  oneOf<T extends string>(field: string, choices: readonly T[], fallback?: T): T {
    const v = this.str(field, fallback);
    if (!choices.includes(v as T)) this.#fail(field, `one of ${choices.join(", ")}`, v);
    return v as T;
  }

  /** `id2label` as an ordered list of names (HF stores string keys "0", "1", …). */
  labels(): string[] | undefined {
    const m = this.raw.id2label;
    if (m === undefined) return undefined;
    if (typeof m !== "object" || m === null) this.#fail("id2label", "an object", m);
    const entries = Object.entries(m as Json).map(([k, v]) => [Number(k), String(v)] as const);
    entries.sort((a, b) => a[0] - b[0]);
    if (entries.some(([k], i) => k !== i)) this.#fail("id2label", "keys 0..n-1", m);
    return entries.map(([, v]) => v);
  }
}
