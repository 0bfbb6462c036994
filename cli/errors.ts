/** A failed system call (full disk, permissions, missing path) is the user's environment, not a bug: one line naming the path and the fix. */
const FIXES: Record<string, string> = {
  ENOSPC: "no space left on the device: free space and run again (a training run continues with --resume)",
  EDQUOT: "disk quota exceeded: free space and run again",
  EACCES: "permission denied: check the permissions of the path",
  EPERM: "operation not permitted: check the permissions of the path",
  EROFS: "the file system is read-only: pick a writable folder",
  ENOENT: "no such file or folder: check the path",
  ENOTDIR: "a part of the path is a file, not a folder: check the path",
  EISDIR: "a folder where a file is expected: check the path",
  EEXIST: "the path already exists",
  EMFILE: "too many open files: raise the limit (ulimit -n)",
  EIO: "input/output error from the device",
};

export function describeSystemError(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException & { dest?: string };
  if (!(err instanceof Error) || typeof err.code !== "string" || typeof err.syscall !== "string") return undefined;
  const fix = FIXES[err.code] ?? err.message;
  return `${err.syscall} ${err.path ?? ""}${err.dest ? ` → ${err.dest}` : ""} failed (${err.code}): ${fix}`;
}
