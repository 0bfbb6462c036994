/** File-system reads that fail with a DataError naming the path, shared by the loaders. */
import { closeSync, openSync, readSync, readdirSync, readFileSync, statSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { DataError } from "../errors.ts";

const CHUNK = 1 << 20;

/** `read()`, with a failure turned into a DataError naming the file. */
function attempt<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw new DataError(`Dataset file ${file} cannot be read (${(e as Error).message}). Check the path.`);
  }
}

/**
 * The lines of a text file (without their "\n" or "\r\n"), read a megabyte at a time: a JSONL
 * file of any size streams, where one string of it would pass V8's 512 MiB string limit.
 */
export function* readLines(file: string): Generator<string> {
  const fd = attempt(file, () => openSync(file, "r"));
  try {
    const buf = Buffer.alloc(CHUNK);
    const decoder = new StringDecoder("utf8");
    let rest = "";
    for (let n: number; (n = readSync(fd, buf, 0, CHUNK, null)) > 0; ) {
      const lines = (rest + decoder.write(buf.subarray(0, n))).split("\n");
      rest = lines.pop()!;
      for (const line of lines) yield line.endsWith("\r") ? line.slice(0, -1) : line;
    }
    rest += decoder.end();
    if (rest) yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
  } finally {
    closeSync(fd);
  }
}

/** V8's longest string (2^29 - 24 UTF-16 units): a file beyond it cannot become one string. */
const MAX_TEXT_BYTES = 2 ** 29 - 24;

/** A whole text file as one string; files past V8's string limit are refused naming the streamed formats. */
export function readText(file: string): string {
  const size = attempt(file, () => statSync(file).size);
  if (size > MAX_TEXT_BYTES)
    throw new DataError(
      `Dataset file ${file} holds ${size} bytes, more than the ${MAX_TEXT_BYTES} this format is read in at once; convert it to JSONL (read line by line) or split it`,
    );
  return readBytes(file).toString("utf8");
}

/** The first `bytes` of a file as text (a split UTF-8 character at the end is dropped). */
export function readHead(file: string, bytes: number): string {
  const fd = attempt(file, () => openSync(file, "r"));
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return new StringDecoder("utf8").write(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

export function readBytes(file: string): Buffer {
  return attempt(file, () => readFileSync(file));
}

export function readDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    throw new DataError(`Dataset folder ${dir} cannot be read (${(e as Error).message}). Check the path.`);
  }
}
