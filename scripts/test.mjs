// Runs `biome check`, then every *.test.ts under src/ and test/ with node's own test runner (CI reads its summary).
// Node 20's --test takes no globs, so the file list is built here.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}
const filter = process.argv.slice(2);
const files = ["src", "test"]
  .flatMap((d) => find(d))
  .filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)))
  .sort();
// with no file, node --test would run its default patterns (this script, test/package-consumer)
if (files.length === 0) {
  console.error(`no *.test.ts file under src/ or test/ has a name containing ${filter.map((f) => JSON.stringify(f)).join(" or ")}`);
  process.exit(1);
}
// Formatting and lint first: a style slip fails the suite as a test would.
const lint = spawnSync(process.execPath, ["node_modules/@biomejs/biome/bin/biome", "check", "."], { stdio: "inherit" });
if (lint.status !== 0) {
  console.error("biome check failed: run `npx biome check --write .` and fix what remains");
  process.exit(lint.status ?? 1);
}
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
