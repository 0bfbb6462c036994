/**
 * safetensors files on disk: the byte format (safetensors-bytes.ts) plus reading and atomic
 * writing.
 *
 * @example
 * const file = readSafetensors("vit/model.safetensors");
 * const w = toFloat32(file.tensors.get("classifier.weight")!); // dtype-convert.ts; [5, 64]
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { writeFileAtomic } from "./atomic-file.ts";
import { FormatError } from "../errors.ts";
import {
  HEADER_LENGTH_BYTES,
  MAX_HEADER_BYTES,
  type SafetensorsDtype,
  type SafetensorsFile,
  type TensorEntry,
  type TensorInputs,
  parseSafetensors,
  parseSafetensorsHeader,
  serializeSafetensors,
  withCause,
} from "./safetensors-bytes.ts";

export * from "./safetensors-bytes.ts";

/** Read and validate a safetensors file; tensors are views into one buffer holding the file. */
export function readSafetensors(path: string): SafetensorsFile {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (err) {
    throw unreadable(path, err);
  }
  // A plain Uint8Array: Buffer's slice() would share memory where a copy is meant.
  return parseSafetensors(new Uint8Array(file.buffer, file.byteOffset, file.byteLength), path);
}

/** A tensor of an opened file: its dtype and shape, its bytes read from disk on each `read()`. */
export interface StoredTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** The tensor as a TensorEntry whose bytes are a fresh buffer (aligned for its typed array), not kept by the file. */
  read(): TensorEntry;
}

/** A safetensors file opened for reading tensor by tensor; `close()` releases the file. */
export interface OpenedSafetensors {
  metadata: Record<string, string> | undefined;
  /** In file order (by data offset). */
  tensors: Map<string, StoredTensor>;
  close(): void;
}

/** The most bytes one readSync call is asked for (its length must stay below 2 GiB). */
const READ_CHUNK = 1 << 30;

/**
 * Open a safetensors file and validate its header without reading the data, so that a caller
 * can hold one tensor at a time (quantizing a checkpoint as it loads) instead of the whole file.
 */
export function openSafetensors(path: string): OpenedSafetensors {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw unreadable(path, err);
  }
  try {
    const fileLength = fstatSync(fd).size;
    const field = readAt(fd, 0, Math.min(HEADER_LENGTH_BYTES, fileLength), path);
    const announced = field.byteLength === HEADER_LENGTH_BYTES ? new DataView(field.buffer).getBigUint64(0, true) : 0n;
    // a length the parser will refuse is not read: it could be the whole file or more
    const headerLength = announced <= BigInt(Math.min(fileLength - field.byteLength, MAX_HEADER_BYTES)) ? Number(announced) : 0;
    const head = new Uint8Array(field.byteLength + headerLength);
    head.set(field);
    head.set(readAt(fd, field.byteLength, headerLength, path), field.byteLength);
    const { metadata, spans, dataStart } = parseSafetensorsHeader(head, fileLength, path);
    const tensors = new Map<string, StoredTensor>();
    for (const { key, dtype, shape, begin, end } of spans) {
      tensors.set(key, { dtype, shape, read: () => ({ dtype, shape, bytes: readAt(fd, dataStart + begin, end - begin, path) }) });
    }
    return { metadata, tensors, close: () => closeSync(fd) };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** `length` bytes of `fd` from `position` into a new buffer. */
function readAt(fd: number, position: number, length: number, path: string): Uint8Array {
  const out = new Uint8Array(length);
  for (let done = 0; done < length; ) {
    const n = readSync(fd, out, done, Math.min(READ_CHUNK, length - done), position + done);
    if (n === 0) throw new FormatError(`${path}: the file ended ${length - done} bytes early at byte ${position + done}; it changed while being read`);
    done += n;
  }
  return out;
}

function unreadable(path: string, err: unknown): FormatError {
  return withCause(
    new FormatError(`safetensors file ${path} cannot be read ` + `(${(err as NodeJS.ErrnoException).code ?? String(err)}); check the path`),
    err,
  );
}

/** Serialise and write atomically: a crash leaves either the old file or the new one. */
export function writeSafetensors(path: string, tensors: TensorInputs, metadata?: Readonly<Record<string, string>>): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
