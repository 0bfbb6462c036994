/** Reading typed fields from a HuggingFace config.json with errors that name the file and field. */
import { FormatError } from "../errors.ts";

export type Json = Record<string, unknown>;

export class ConfigReader {
  constructor(
    readonly raw: Json,
    readonly source: string,
  ) {}

  #fail(field: string, want: string, got: unknown): never {
    const seen = got === undefined ? "it is missing" : `found ${JSON.stringify(got)}`;
    throw new FormatError(`${this.source}: field "${field}" must be ${want}, but ${seen}`);
  }

  int(field: string, fallback?: number, min = 1): number {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) this.#fail(field, `an integer ≥ ${min}`, this.raw[field]);
    return v;
  }

  num(field: string, fallback?: number): number {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) this.#fail(field, "a finite number", this.raw[field]);
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
