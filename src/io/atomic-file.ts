/**
 * Writing files so that a crash or a full disk leaves either the old file or the new one, and a
 * failed write says which file it was writing.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Runs `fn`; a system error it throws without a path gets `path`. write(2) takes a descriptor,
 * so Node's ENOSPC from a write names no file ("write  failed (ENOSPC)"): this puts it back.
 */
export function namingPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e instanceof Error && typeof e.code === "string" && !e.path) {
      e.path = path;
      e.message = `${e.message} '${path}'`;
    }
    throw err;
  }
}

/** Write to `path.tmp-<pid>` (its folder made if missing), flush it to disk, then rename over `path`. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  namingPath(path, () => {
    try {
      mkdirSync(dirname(path), { recursive: true });
      const fd = openSync(tmp, "w");
      try {
        writeFileSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  });
}
