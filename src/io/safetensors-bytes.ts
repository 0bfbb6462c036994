/**
 * The safetensors byte format (huggingface/safetensors): an 8-byte little-endian u64 header
 * length N, N bytes of UTF-8 JSON, then one byte buffer. The JSON maps each tensor name to
 * `{ dtype, shape, data_offsets: [begin, end) }` relative to the buffer start, plus an optional
 * `__metadata__` map of strings. The parser checks everything the reference implementation
 * checks (the tensors must tile the buffer exactly) and never allocates from an unchecked length.
 * No file system here: the browser build parses and serialises bytes with it; safetensors.ts
 * adds the files.
 */
import { FormatError, ShapeError } from "../errors.ts";

/** One tensor of a parsed file; `bytes` is a view into the file's bytes, not a copy. */
export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  metadata: Record<string, string> | undefined;
  /** In file order (by data offset). */
  tensors: Map<string, TensorEntry>;
}

/** The typed array each dtype is read as and written from; F16 and BF16 are raw bit patterns. */
export interface DtypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

/** The dtypes this module reads and writes (safetensors' names). */
export type SafetensorsDtype = keyof DtypeArrays;

/** A tensor to write: the data's array type must be the one `DtypeArrays` names for `dtype`. */
export type TensorInput = {
  [D in SafetensorsDtype]: { dtype: D; shape: readonly number[]; data: DtypeArrays[D] };
}[SafetensorsDtype];

export type TensorInputs = ReadonlyMap<string, TensorInput> | Readonly<Record<string, TensorInput>>;

export type TypedArrayCtor<T> = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  BYTES_PER_ELEMENT: number;
};

/** Typed-array constructors per dtype; their BYTES_PER_ELEMENT is the dtype's size. */
export const DTYPE_ARRAYS: { [D in SafetensorsDtype]: TypedArrayCtor<DtypeArrays[D]> } = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

const DTYPES = Object.keys(DTYPE_ARRAYS) as SafetensorsDtype[];
/** The reference implementation's cap: a larger header is a corrupt or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";

// ---------------------------------------------------------------------------------------------
// Reading

/** Validate and index safetensors bytes; `name` (a path) appears in every error message. */
export function parseSafetensors(bytes: Uint8Array, name: string): SafetensorsFile {
  const { metadata, spans, dataStart } = parseSafetensorsHeader(bytes, bytes.byteLength, name);
  const buffer = bytes.subarray(dataStart);
  const tensors = new Map<string, TensorEntry>();
  for (const s of spans) {
    tensors.set(s.key, { dtype: s.dtype, shape: s.shape, bytes: buffer.subarray(s.begin, s.end) });
  }
  return { metadata, tensors };
}

/** The little-endian u64 header length that starts every safetensors file. */
export const HEADER_LENGTH_BYTES = 8;

/**
 * The header of a safetensors file of `fileLength` bytes, from its first bytes `head` (at least
 * the length field and the header it announces): every tensor's span within the data buffer,
 * which starts at `dataStart`. Checks what parseSafetensors checks, so a file read tensor by
 * tensor is validated as strictly as one read whole.
 */
export function parseSafetensorsHeader(
  head: Uint8Array,
  fileLength: number,
  name: string,
): { metadata: Record<string, string> | undefined; spans: Span[]; dataStart: number } {
  if (fileLength < HEADER_LENGTH_BYTES || head.byteLength < HEADER_LENGTH_BYTES) {
    throw new FormatError(
      `${name}: a safetensors file starts with an 8-byte header length, but the file has ` + `${fileLength} bytes; the file is truncated or not safetensors`,
    );
  }
  const headerLength = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(0, true);
  const room = fileLength - HEADER_LENGTH_BYTES;
  if (headerLength > BigInt(Math.min(room, MAX_HEADER_BYTES))) {
    throw new FormatError(
      `${name}: the header length field says ${headerLength} bytes, but at most ` +
        `${Math.min(room, MAX_HEADER_BYTES)} are possible (${room} bytes follow the field, limit ` +
        `${MAX_HEADER_BYTES}); the file is truncated or not safetensors`,
    );
  }
  const dataStart = HEADER_LENGTH_BYTES + Number(headerLength);
  const header = decodeHeader(head.subarray(HEADER_LENGTH_BYTES, dataStart), name);
  const bufferLength = fileLength - dataStart;
  let metadata: Record<string, string> | undefined;
  const spans: Span[] = [];
  for (const [key, value] of Object.entries(header)) {
    if (key === METADATA_KEY) metadata = checkMetadata(value, name);
    else spans.push(checkSpan(key, value, bufferLength, name));
  }
  checkTiling(spans, bufferLength, name);
  return { metadata, spans, dataStart };
}

/** Where one tensor's bytes lie in a file's data buffer: [begin, end). */
export interface Span {
  key: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function decodeHeader(raw: Uint8Array, name: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (err) {
    throw withCause(
      new FormatError(
        `${name}: the ${raw.byteLength}-byte header must be UTF-8 JSON, but it does not parse ` +
          `(${(err as Error).message}); the file is corrupt or not safetensors`,
      ),
      err,
    );
  }
  if (!isPlainObject(parsed)) {
    throw new FormatError(`${name}: the header must be a JSON object mapping tensor names to entries, but it is ` + `${describe(parsed)}`);
  }
  return parsed;
}

function checkMetadata(value: unknown, name: string): Record<string, string> {
  const bad = !isPlainObject(value) ? describe(value) : Object.entries(value).find(([, v]) => typeof v !== "string");
  if (bad !== undefined) {
    const found = typeof bad === "string" ? bad : `"${bad[0]}": ${describe(bad[1])}`;
    throw new FormatError(`${name}: "${METADATA_KEY}" must be an object of string values, but found ${found}`);
  }
  return value as Record<string, string>;
}

function checkSpan(key: string, value: unknown, bufferLength: number, name: string): Span {
  const fail = (rule: string) => new FormatError(`${name}: tensor "${key}": ${rule}`);
  if (!isPlainObject(value)) {
    throw fail(`expected an object { dtype, shape, data_offsets }, found ${describe(value)}`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !(DTYPES as string[]).includes(dtype)) {
    throw fail(`dtype ${describe(dtype)} is not supported; expected one of ${DTYPES.join(", ")}`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw fail(`shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw fail(`data_offsets must be [begin, end] with non-negative integers, ` + `found ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw fail(`data_offsets [${begin}, ${end}] have begin > end`);
  if (end > bufferLength) {
    throw fail(`data_offsets [${begin}, ${end}] end beyond the ${bufferLength}-byte data buffer; ` + `the file is truncated or its header is wrong`);
  }
  const d = dtype as SafetensorsDtype;
  const expected = shape.reduce((n: number, s: number) => n * s, 1) * elementBytes(d);
  if (end - begin !== expected) {
    throw fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape ` + `${JSON.stringify(shape)} of ${d} needs ${expected}`);
  }
  return { key, dtype: d, shape: shape as number[], begin, end };
}

/** The reference implementation requires the tensors to tile the buffer: no overlap, no hole. */
function checkTiling(spans: Span[], bufferLength: number, name: string): void {
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: Span | undefined;
  for (const s of spans) {
    if (s.begin < cursor) {
      throw new FormatError(
        `${name}: tensor "${s.key}": data_offsets [${s.begin}, ${s.end}] overlap tensor ` +
          `"${previous?.key}" [${previous?.begin}, ${previous?.end}]; each byte of the data ` +
          `buffer must belong to exactly one tensor`,
      );
    }
    if (s.begin > cursor) {
      throw new FormatError(
        `${name}: tensor "${s.key}": data_offsets start at ${s.begin}, leaving bytes ` +
          `[${cursor}, ${s.begin}) of the data buffer unused; expected it to start at ${cursor} ` +
          `(tensors must cover the buffer without holes)`,
      );
    }
    cursor = s.end;
    previous = s;
  }
  if (cursor !== bufferLength) {
    throw new FormatError(
      `${name}: bytes [${cursor}, ${bufferLength}) of the data buffer belong to no tensor ` +
        `(last: "${previous?.key ?? "none"}"); expected the tensors to end exactly at the file end`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Serialise tensors to safetensors bytes. Tensors are laid out by element size (largest first),
 * then by name, as the reference writer does, so every tensor is aligned to its element size
 * and reads back as a zero-copy view; the header is padded with spaces to a multiple of 8.
 */
/** Float32 tensors by name (a weight map) as writer inputs, keys optionally prefixed. */
export function float32Inputs(tensors: Iterable<[string, { shape: number[]; data: Float32Array }]>, prefix = ""): Map<string, TensorInput> {
  return new Map([...tensors].map(([k, t]) => [prefix + k, { dtype: "F32" as const, shape: t.shape, data: t.data }]));
}

/** Encode tensors (and string metadata) as safetensors bytes. */
export function serializeSafetensors(tensors: TensorInputs, metadata?: Readonly<Record<string, string>>): Uint8Array {
  requireLittleEndianHost();
  const pairs: [string, TensorInput][] = tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, TensorInput>);
  const named = pairs.map(([key, t]) => checkInput(key, t));
  named.sort(([ka, a], [kb, b]) => elementBytes(b.dtype) - elementBytes(a.dtype) || (ka < kb ? -1 : ka > kb ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    header[METADATA_KEY] = checkMetadata(metadata, "safetensors metadata");
  }
  let offset = 0;
  for (const [key, t] of named) {
    const end = offset + t.data.byteLength;
    header[key] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.byteLength / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength);
  let cursor = 8 + headerLength;
  for (const [, t] of named) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), cursor);
    cursor += t.data.byteLength;
  }
  return out;
}

function checkInput(key: string, t: TensorInput): [string, TensorInput] {
  if (key === METADATA_KEY) {
    throw new FormatError(`tensor name "${METADATA_KEY}" is reserved for metadata; rename the tensor`);
  }
  const Ctor = DTYPE_ARRAYS[t.dtype];
  if (Ctor === undefined) {
    throw new ShapeError(`tensor "${key}": dtype ${describe(t.dtype)} is not supported; ` + `expected one of ${DTYPES.join(", ")}`);
  }
  if (!(t.data instanceof Ctor)) {
    throw new ShapeError(
      `tensor "${key}": dtype ${t.dtype} is written from a ${Ctor.name}, but data is a ` + `${describe(t.data)}; convert the data or change the dtype`,
    );
  }
  if (!t.shape.every(isNonNegativeInteger)) {
    throw new ShapeError(`tensor "${key}": shape must hold non-negative integers, found ${JSON.stringify(t.shape)}`);
  }
  const size = t.shape.reduce((n, s) => n * s, 1);
  if (size !== t.data.length) {
    throw new ShapeError(
      `tensor "${key}": shape ${JSON.stringify(t.shape)} has ${size} elements, but data has ` + `${t.data.length}; pass the shape the data was computed with`,
    );
  }
  return [key, t];
}

// ---------------------------------------------------------------------------------------------
// Helpers

function elementBytes(dtype: SafetensorsDtype): number {
  return DTYPE_ARRAYS[dtype].BYTES_PER_ELEMENT;
}

export function requireLittleEndianHost(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new FormatError("safetensors is little-endian; typed-array views of its bytes need a little-endian host");
  }
}

/** Attach the underlying error (ENOENT, a JSON SyntaxError) to the typed error that reports it. */
export function withCause<E extends Error>(error: E, cause: unknown): E {
  error.cause = cause;
  return error;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isNonNegativeInteger(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === "string") return JSON.stringify(v);
  return typeof v === "object" ? "an object" : `${typeof v} ${String(v)}`;
}
