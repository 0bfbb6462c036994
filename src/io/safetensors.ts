/**
 * safetensors files on disk: the byte format (safetensors-bytes.ts) plus reading and atomic
 * writing.
 *
 * @example
 * const file = readSafetensors("vit/model.safetensors");
 * const w = toFloat32(file.tensors.get("classifier.weight")!); // dtype-convert.ts; [5, 64]
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic-file.ts";
import { FormatError } from "../errors.ts";
import { type SafetensorsFile, type TensorInputs, parseSafetensors, serializeSafetensors, withCause } from "./safetensors-bytes.ts";

export * from "./safetensors-bytes.ts";

/** Read and validate a safetensors file; tensors are views into one buffer holding the file. */
export function readSafetensors(path: string): SafetensorsFile {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (err) {
    throw withCause(
      new FormatError(`safetensors file ${path} cannot be read ` + `(${(err as NodeJS.ErrnoException).code ?? String(err)}); check the path`),
      err,
    );
  }
  // A plain Uint8Array: Buffer's slice() would share memory where a copy is meant.
  return parseSafetensors(new Uint8Array(file.buffer, file.byteOffset, file.byteLength), path);
}

/** Serialise and write atomically: a crash leaves either the old file or the new one. */
export function writeSafetensors(path: string, tensors: TensorInputs, metadata?: Readonly<Record<string, string>>): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
