/**
 * The public API is documented and nothing is dead: TypeDoc's validation fails on an exported
 * symbol of the three entry points without a doc comment (typedoc.json), and knip finds no
 * unused file, export, type or dependency (knip.json names the entry points: the public
 * entries, the CLI, the benchmarks, scripts, the studio page and the tests).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

function tool(script: string, args: string[]) {
  return spawnSync(process.execPath, [script, ...args], { encoding: "utf8", timeout: 300_000, env: { ...process.env, NO_COLOR: "1" } });
}

test("every export of the public entry points has a doc comment (TypeDoc validation)", () => {
  const r = tool("node_modules/typedoc/bin/typedoc", ["--emit", "none"]);
  assert.equal(r.status, 0, `TypeDoc found undocumented exports (add a /** … */ comment saying what each is for):\n${r.stdout}${r.stderr}`);
});

test("knip reports nothing unused", () => {
  const r = tool("node_modules/knip/bin/knip.js", ["--no-progress"]);
  assert.equal(r.status, 0, `knip found unused code (remove it, or name a missing entry point in knip.json):\n${r.stdout}${r.stderr}`);
});
