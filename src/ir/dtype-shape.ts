/** Element types and shapes of IR values; symbolic dims are strings ("batch", "seq"). */
import { ShapeError } from "../errors.ts";

/** uint8 and float16 hold frozen weights (QuantMatMul's block codes and half-precision bits), which no other op reads. */
export type DType = "float32" | "float64" | "int64" | "int32" | "bool" | "uint8" | "float16";
export type Dim = number | string;
export type Shape = readonly Dim[];

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(["float32", "float64"]);

export function isFloat(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

export function shapeToString(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The sum of two dims: a number when both are, else the expression "a+b" (how a KV cache's
 * "past_sequence_length+sequence_length" arises from a Concat). `dimTerms` reads it back.
 */
export function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return `${a}+${b}`;
}

/** The product of two dims: a number when both are, else "a*b" (a number first), e.g. grouped query rows "4*sequence_length". */
export function mulDims(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  if (`${a}${b}`.includes("+")) throw new ShapeError(`dims ${a} and ${b}: a product of a sum is not supported`);
  return typeof b === "number" ? `${b}*${a}` : `${a}*${b}`;
}

/** A dim expression as a sum of products of numbers and symbol names ("a+b", "4*a"). */
export function dimTerms(d: Dim): Dim[][] {
  if (typeof d === "number") return [[d]];
  return d.split("+").map((t) => t.split("*").map((f) => (/^\d+$/.test(f) ? Number(f) : f)));
}

/** Number of elements, or undefined when a dim is symbolic. */
export function sizeOf(shape: Shape): number | undefined {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number") return undefined;
    n *= d;
  }
  return n;
}

/** Every dim must be concrete (graphs are compiled per concrete shape family). */
export function concrete(shape: Shape, what: string): number[] {
  return shape.map((d) => {
    if (typeof d !== "number") {
      throw new ShapeError(`${what}: dim "${d}" of ${shapeToString(shape)} must be concrete here`);
    }
    return d;
  });
}

/** Normalise a possibly negative axis against a rank, with a range check. */
export function checkAxis(axis: number, rank: number, what: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) {
    throw new ShapeError(`${what}: axis ${axis} is out of range [${-rank}, ${rank - 1}]`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Numpy broadcasting of two shapes; symbolic dims match only themselves or 1. */
export function broadcastShapes(a: Shape, b: Shape, what = "broadcast"): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else {
      throw new ShapeError(`${what}: shapes ${shapeToString(a)} and ${shapeToString(b)} do not broadcast (dim ${i}: ${da} vs ${db})`);
    }
  }
  return out;
}

/**
 * The axes of `full` that were broadcast from `small` (leading extra axes and dims that were 1),
 * i.e. the axes a gradient must be summed over to return to `small`.
 */
export function broadcastAxes(small: Shape, full: Shape): number[] {
  const lead = full.length - small.length;
  const axes: number[] = [];
  for (let i = 0; i < full.length; i++) {
    if (i < lead) axes.push(i);
    else if (small[i - lead] === 1 && full[i] !== 1) axes.push(i);
  }
  return axes;
}
