// Source files stay readable: a hard cap of 1000 lines per file, so a file has one role.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const HARD_CAP = 1000;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|mjs|js)$/.test(name) && !name.endsWith(".test.ts") ? [p] : [];
  });
}

test("no source file passes the hard line cap", () => {
  const files = ["src", "cli", "bench", "scripts"].flatMap((d) => sources(d));
  assert.ok(files.length > 20, `expected the source tree, found ${files.length} files`);
  const over = files.map((f) => [f, readFileSync(f, "utf8").split("\n").length] as const).filter(([, n]) => n > HARD_CAP);
  assert.deepEqual(over, [], `files over ${HARD_CAP} lines: ${over.map(([f, n]) => `${f} (${n})`).join(", ")}; split them by role`);
});
