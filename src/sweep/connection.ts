/**
 * Where a sweep lives: a Redis URL (redis://[user:password@]host:port/db, rediss:// for TLS)
 * parsed once into ioredis options with a bounded, reported reconnect back-off. BullMQ opens
 * its own connections from these options.
 */
import type { RedisOptions } from "bullmq";
import { ConfigError } from "../errors.ts";

/** Every key of the queue starts with `tenslora:runs:`. */
export const QUEUE_PREFIX = "tenslora";
export const QUEUE_NAME = "runs";

export interface ConnectionHooks {
  /** Called before each reconnect attempt (the connection was lost or refused). */
  onRetry?: (attempt: number, delayMs: number) => void;
  /**
   * Attempts before commands fail; undefined keeps retrying forever (a worker waits for Redis to
   * come back, a one-shot command such as `sweep status` gives up and says so).
   */
  maxAttempts?: number;
}

/** Reconnect delays: 0.5 s doubling to 30 s. */
export const retryDelay = (attempt: number): number => Math.min(500 * 2 ** (attempt - 1), 30_000);

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

export function redisOptions(url: string, hooks: ConnectionHooks = {}): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`--queue takes a Redis URL such as redis://127.0.0.1:6379/0, got "${url}"`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new ConfigError(`--queue takes a redis:// or rediss:// URL, got "${redactUrl(url)}"`);
  const dbPath = u.pathname.replace(/^\//, "");
  const db = dbPath === "" ? 0 : Number(dbPath);
  if (!Number.isInteger(db) || db < 0)
    throw new ConfigError(`the Redis database in "${redactUrl(url)}" must be a non-negative integer (redis://host:port/DB), got "${dbPath}"`);
  const port = u.port === "" ? 6379 : Number(u.port);
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === "rediss:" ? {} : undefined,
    // BullMQ's workers block on Redis; their commands wait for a reconnect instead of failing
    maxRetriesPerRequest: hooks.maxAttempts === undefined ? null : hooks.maxAttempts,
    retryStrategy: (attempt: number) => {
      if (hooks.maxAttempts !== undefined && attempt > hooks.maxAttempts) return null;
      const delay = retryDelay(attempt);
      hooks.onRetry?.(attempt, delay);
      return delay;
    },
  };
}
