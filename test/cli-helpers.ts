/** Running the real `tenslora` CLI (bin/tenslora.js) as a child process, with a private model cache. */
import { spawn, spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import { cliEnv, tempDir } from "./make-data.ts";

export const BIN = "bin/tenslora.js";

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The model cache every CLI child of a test file shares (the embedded backbone is pretrained once, and its path is part of the adapter config). */
export const cache = tempDir("tenslora-cache-");

/** Run `tenslora ...args` to completion. */
export function cli(args: string[], timeoutMs = 120_000): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: cliEnv(cache), encoding: "utf8", timeout: timeoutMs });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Run `tenslora ...args` without blocking (several may run at once); `env` replaces the shared-cache one. */
export function cliAsync(args: string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = cliEnv(cache)): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Exit 0, or fail showing what the command printed. */
export function assertOk(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code} (${r.signal ?? "no signal"})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

/** A stack-trace line ("    at fn (file:line)"): user mistakes must never print one. */
export const STACK_LINE = /^\s+at .+/m;

/** Non-zero exit, one `tenslora: …` line matching `pattern`, no stack trace. */
export function assertUserError(r: CliResult, pattern: RegExp, what: string): void {
  const shown = `\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.notEqual(r.code, 0, `${what} should fail${shown}`);
  assert.equal(r.code, 1, `${what}: a user error exits 1${shown}`);
  assert.match(r.stderr, /^tenslora: /m, `${what}: the message starts with "tenslora: "${shown}`);
  assert.match(r.stderr, pattern, `${what}: message${shown}`);
  assert.doesNotMatch(r.stderr, STACK_LINE, `${what}: no stack trace${shown}`);
}
