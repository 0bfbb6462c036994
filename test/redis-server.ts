/**
 * A private redis-server (Debian's package) for the queue tests: a free loopback port, a temp
 * folder, append-only persistence so a restart keeps the queue, stopped when the test ends.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { tempDir } from "./make-data.ts";

export interface RedisServer {
  url: string;
  port: number;
  /** SIGKILL the server (a crash), then start it again on the same port and folder; with `loseData`, its files are gone first (a restart without persistence). */
  crashAndRestart(downMs: number, opts?: { loseData?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function startRedis(): Promise<RedisServer> {
  if (spawnSync("redis-server", ["--version"]).error) {
    throw new Error("redis-server is not installed: `apt-get install -y redis-server` (.ci/run installs it when missing)");
  }
  const dir = tempDir("tenslora-redis-");
  const port = await freePort();
  const launch = (): Promise<ChildProcess> =>
    new Promise((resolve, reject) => {
      const child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}:\n${out}`)), 15_000);
      child.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve(child);
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}) on port ${port}:\n${out}`));
      });
    });
  let child = await launch();
  const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", () => r())));
  process.on("exit", () => child.kill("SIGKILL"));
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    async crashAndRestart(downMs, opts = {}) {
      child.kill("SIGKILL");
      await exited(child);
      if (opts.loseData) for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, downMs));
      child = await launch();
    },
    async stop() {
      child.kill("SIGTERM");
      await exited(child);
    },
  };
}
