/** File-system reads that fail with a DataError naming the path, shared by the loaders. */
import { readdirSync, readFileSync } from "node:fs";
import { DataError } from "../errors.ts";

export function readText(file: string): string {
  return readBytes(file).toString("utf8");
}

export function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new DataError(`Dataset file ${file} cannot be read (${(e as Error).message}). Check the path.`);
  }
}

export function readDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    throw new DataError(`Dataset folder ${dir} cannot be read (${(e as Error).message}). Check the path.`);
  }
}
