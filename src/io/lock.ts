/**
 * An exclusive lock file, taken atomically (O_CREAT|O_EXCL) and holding its owner's pid and host.
 * A lock whose owner is gone (same host, no such process) is stale and taken over; a live one
 * is refused with the owner's pid. Released on release() and on normal exit; a SIGKILLed owner
 * leaves a stale lock, which the next taker detects.
 */
import { hostname } from "node:os";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { TensLoRAError } from "../errors.ts";
import { namingPath } from "./atomic-file.ts";

/** Another live process holds the lock. */
export class LockedError extends TensLoRAError {}

export interface Lock {
  path: string;
  release(): void;
}

interface Owner {
  pid: number;
  host: string;
  since: string;
}

function readOwner(path: string): Owner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, "utf8"));
    return Number.isInteger(o?.pid) && typeof o?.host === "string" ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Whether process `pid` of this host is running. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Stale: unreadable (a writer killed between create and write), or its owner is a dead process of
 * this host, or it carries our pid but predates this process (a pid reused after a restart).
 */
function isStale(owner: Owner | undefined): boolean {
  if (!owner) return true;
  if (owner.host !== hostname()) return false;
  if (owner.pid === process.pid) return Date.parse(owner.since) < Date.now() - process.uptime() * 1000 - 1000;
  return !alive(owner.pid);
}

/** Take the lock at `path`; `what` names the locked thing in the refusal ("run folder runs/a"). */
export function acquireLock(path: string, what: string): Lock {
  const me: Owner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const text = JSON.stringify(me);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      namingPath(path, () => writeFileSync(path, text, { flag: "wx" }));
      const release = () => {
        process.off("exit", release);
        // only our own lock is removed (a stale-lock taker may have replaced it)
        if (readOwner(path)?.pid === me.pid && readOwner(path)?.since === me.since) rmSync(path, { force: true });
      };
      process.on("exit", release);
      return { path, release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = readOwner(path);
    if (!isStale(owner)) {
      throw new LockedError(
        `${what} is in use by process ${owner!.pid} on ${owner!.host} (since ${owner!.since}); wait for it to finish, or stop it, or use another folder`,
      );
    }
    // Move the stale lock aside, then make sure what was moved is the stale one and not a lock a
    // concurrent taker created in between; if it is not, put it back and look again.
    const aside = `${path}.stale-${process.pid}`;
    try {
      renameSync(path, aside);
    } catch {
      continue;
    }
    const moved = readOwner(aside);
    if (moved && owner && (moved.pid !== owner.pid || moved.since !== owner.since)) renameSync(aside, path);
    else rmSync(aside, { force: true });
  }
  throw new LockedError(`${what}: the lock ${path} keeps changing hands; another process is taking it, try again`);
}
