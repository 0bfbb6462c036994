/**
 * A real full disk without privileges: a command runs in a private user and mount namespace
 * (`unshare -Urm`) with a small tmpfs mounted over a folder, so its writes there fail with the
 * kernel's own ENOSPC.
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";

/** Why a tiny disk cannot be made here (user namespaces not permitted), or false where it can. */
export function tinyDiskUnavailable(): string | false {
  const probe = spawnSync("unshare", ["-Urm", "true"], { encoding: "utf8" });
  return probe.status === 0 ? false : `unshare -Urm is not permitted here: ${probe.stderr}`;
}

/** Runs `argv` with `dir` a tmpfs of `size` (e.g. "256k") while it runs. */
export function onTinyDisk(dir: string, size: string, argv: readonly string[]): SpawnSyncReturns<string> {
  return spawnSync("unshare", ["-Urm", "sh", "-c", `mount -t tmpfs -o size=${size} tmpfs "$1" && shift && exec "$@"`, "sh", dir, ...argv], {
    encoding: "utf8",
    timeout: 120_000,
  });
}
