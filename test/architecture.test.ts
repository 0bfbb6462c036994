/**
 * The import rules of docs/architecture.md hold: every import of every non-test file in src/, cli/
 * and studio/ (static, type-only, re-export and dynamic, as TypeScript's pre-processor lists them)
 * goes to its own folder or to one the table allows. The table is read from the page itself, so
 * the documentation and the check cannot drift apart.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import ts from "typescript";

const ROOT = join(import.meta.dirname, "..");
const DOC = "docs/architecture.md";
/** Everyone may import the typed errors. */
const SHARED = ["src/errors.ts"];
const ORT_PACKAGES = /^onnxruntime-(node|web|common)(\/|$)/;

type Rules = Map<string, string[]>;

/** The "Allowed imports" table: `folder` → the folders and files it may import. */
function parseRules(markdown: string): Rules {
  const section = markdown.split(/^## Allowed imports$/m)[1]?.split(/^## /m)[0];
  if (!section) throw new Error(`${DOC} has no "## Allowed imports" section`);
  const rules: Rules = new Map();
  for (const line of section.split("\n")) {
    const m = /^\|\s*`([^`]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (m)
      rules.set(
        m[1],
        [...m[2].matchAll(/`([^`]+)`/g)].map((x) => x[1]),
      );
  }
  return rules;
}

/** The table row a repository path falls under: the longest row that is the path or a folder above it. */
function unitOf(path: string, rules: Rules): string | undefined {
  let best: string | undefined;
  for (const unit of rules.keys()) if ((path === unit || path.startsWith(`${unit}/`)) && (!best || unit.length > best.length)) best = unit;
  return best;
}

const covers = (allowed: string, target: string) => target === allowed || target.startsWith(`${allowed}/`);

/** Every import in `files` ({path: source}) that the rules refuse, as one readable line each. */
function violations(files: Record<string, string>, rules: Rules): string[] {
  const out: string[] = [];
  for (const [path, source] of Object.entries(files)) {
    const unit = unitOf(path, rules);
    if (!unit) {
      out.push(`${path}: its folder has no row in the table of ${DOC}`);
      continue;
    }
    for (const { fileName: spec } of ts.preProcessFile(source, true, true).importedFiles) {
      if (!spec.startsWith(".")) {
        if (ORT_PACKAGES.test(spec) && unit !== "src/runtime") out.push(`${path} imports ${spec}: only src/runtime imports ONNX Runtime`);
        continue;
      }
      const target = normalize(join(dirname(path), spec));
      const allowed = [unit, ...SHARED, ...(rules.get(unit) ?? [])];
      if (!allowed.some((a) => covers(a, target))) {
        out.push(
          `${path} imports ${spec} (${unitOf(target, rules) ?? target}), which ${unit} may not import; allowed: ${allowed.slice(1).join(", ") || "none"}`,
        );
      }
    }
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(join(ROOT, p)).isDirectory()) return sources(p);
    return /\.ts$/.test(name) && !/\.(d|test)\.ts$/.test(name) ? [p] : [];
  });
}

const rules = parseRules(readFileSync(join(ROOT, DOC), "utf8"));

test("the table of allowed imports names only folders and files that exist", () => {
  assert.ok(rules.size >= 15, `expected a row per folder in ${DOC}, found ${rules.size}`);
  const missing = [...rules].flatMap(([unit, allowed]) => [unit, ...allowed]).filter((p) => !existsSync(join(ROOT, p)));
  assert.deepEqual(missing, [], `${DOC} names paths that do not exist`);
});

test("every import in src/, cli/ and studio/ follows docs/architecture.md", () => {
  const files = Object.fromEntries(["src", "cli", "studio"].flatMap(sources).map((p) => [p, readFileSync(join(ROOT, p), "utf8")]));
  assert.ok(Object.keys(files).length > 100, `expected the source tree, found ${Object.keys(files).length} files`);
  assert.deepEqual(violations(files, rules), []);
});

test("a forbidden import is reported with the file, the import and the rule", () => {
  const found = violations(
    {
      "src/models/vit/model.ts": 'import { grad } from "../../autodiff/vjp.ts";\nimport type { X } from "../../nn/params.ts";',
      "src/tasks/x.ts": 'export { compile } from "../runtime/session.ts";\nconst o = await import("onnxruntime-node");',
      "src/train/y.ts": 'import type { Runtime } from "../runtime/types.ts";\nimport { ConfigError } from "../errors.ts";',
    },
    rules,
  );
  assert.equal(found.length, 3, found.join("\n"));
  assert.match(found[0], /^src\/models\/vit\/model\.ts imports \.\.\/\.\.\/autodiff\/vjp\.ts \(src\/autodiff\), which src\/models may not import/);
  assert.match(found[1], /^src\/tasks\/x\.ts imports \.\.\/runtime\/session\.ts \(src\/runtime\), which src\/tasks may not import/);
  assert.match(found[2], /^src\/tasks\/x\.ts imports onnxruntime-node: only src\/runtime imports ONNX Runtime/);
});
