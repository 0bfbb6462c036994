/**
 * The published package as a user gets it. The tarball is built and packed once, then installed
 * offline into an empty project (npm's cache holds every dependency since the repository's own
 * `npm ci`; the project's lockfile is the repository's, less its dev dependencies, so npm needs
 * no registry). There a plain .mjs file trains a step, a .ts file type-checks under nodenext,
 * the installed `tenslora --help` runs, and the browser entry bundles with no Node module.
 * publint and arethetypeswrong check the package's fields and types.
 */
import assert from "node:assert/strict";
import { execFile, type SpawnSyncReturns, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { tempDir } from "./make-data.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CONSUMER = join(ROOT, "test/package-consumer");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

/** The environment without the npm_* variables of an enclosing `npm test`, which would steer the inner npm. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));

function run(cmd: string, args: string[], cwd: string, timeout = 300_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `run` without blocking, so the checks on the installed package run side by side. */
async function runAsync(cmd: string, args: string[], cwd: string, timeout = 300_000): Promise<{ stdout: string; stderr: string }> {
  try {
    return await promisify(execFile)(cmd, args, { cwd, env, encoding: "utf8", timeout, maxBuffer: 64 * 2 ** 20 });
  } catch (e) {
    const err = e as { code?: number; signal?: string; stdout?: string; stderr?: string };
    assert.fail(`${cmd} ${args.join(" ")} failed (${err.code ?? err.signal}):\n${err.stdout}\n${err.stderr}`);
  }
}

interface Packed {
  filename: string;
  size: number;
  entryCount: number;
  files: { path: string }[];
}

let packed: Packed;
let tarball: string;
let app: string;
let install: SpawnSyncReturns<string>;

/** The consumer's lockfile: the tarball at the top, and the repository's resolution of everything it depends on. */
function consumerLock(tgz: Buffer): object {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
  const dep = { tenslora: `file:${packed.filename}` };
  const packages: Record<string, unknown> = {
    "": { name: "consumer", dependencies: dep },
    "node_modules/tenslora": {
      version: pkg.version,
      resolved: `file:${packed.filename}`,
      integrity: `sha512-${createHash("sha512").update(tgz).digest("base64")}`,
      license: pkg.license,
      dependencies: pkg.dependencies,
      optionalDependencies: pkg.optionalDependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) if (path && !entry.dev) packages[path] = entry;
  return { name: "consumer", lockfileVersion: 3, requires: true, packages };
}

// the checks on the installed package are independent, and mostly wait on child processes
describe("the packed package", { concurrency: true }, () => {
  before(() => {
    const dir = tempDir("tenslora-pack-");
    run(process.execPath, ["scripts/build.mjs"], ROOT);
    [packed] = JSON.parse(run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], ROOT).stdout);
    tarball = join(dir, packed.filename);
    app = join(dir, "app");
    const tgz = readFileSync(tarball);
    mkdirSync(app);
    copyFileSync(tarball, join(app, packed.filename));
    // our install-script policy: npm 11 runs a dependency's script unless the project denies it, and onnxruntime-node's fetches CUDA from NuGet
    const manifest = { name: "consumer", private: true, type: "module", dependencies: { tenslora: `file:${packed.filename}` }, allowScripts: pkg.allowScripts };
    writeFileSync(join(app, "package.json"), JSON.stringify(manifest, null, 2));
    writeFileSync(join(app, "package-lock.json"), JSON.stringify(consumerLock(tgz), null, 2));
    install = run("npm", ["install", "--offline", "--no-audit", "--no-fund"], app);
    console.log(`tarball: ${packed.entryCount} files, ${(packed.size / 1e6).toFixed(2)} MB`);
  });

  test("the tarball holds the compiled package and nothing of the repository's tests, benchmarks or sources", () => {
    const paths = packed.files.map((f) => f.path);
    for (const p of [
      "bin/tenslora.js",
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/index.js.map",
      "dist/src/browser.js",
      "dist/src/sweep/index.js",
      "dist/cli/main.js",
    ])
      assert.ok(paths.includes(p), `${p} is missing from the tarball`);
    const stray = paths.filter((p) => /(^|\/)(test|bench|fixtures)\/|\.test\.|^src\/|^cli\/|\.ts$/.test(p) && !p.endsWith(".d.ts"));
    assert.deepEqual(stray, []);
  });

  test("installing the tarball offline prints no npm warning", () => {
    assert.doesNotMatch(`${install.stdout}\n${install.stderr}`, /npm warn/i);
  });

  test("npm in the repository has every dependency's install script reviewed and reads no unknown config", () => {
    const r = run("npm", ["install-scripts", "ls", "--json"], ROOT);
    assert.deepEqual(JSON.parse(r.stdout).allowScripts, []);
    assert.doesNotMatch(r.stderr, /npm warn/i);
  });

  test("publint and arethetypeswrong find nothing wrong", async () => {
    await runAsync(process.execPath, [join(ROOT, "node_modules/publint/src/cli.js"), join(app, "node_modules/tenslora"), "--pack", "false", "--strict"], app);
    // ESM only: node10 and require() from CommonJS are out of scope, as `type: module` says
    await runAsync(
      process.execPath,
      [join(ROOT, "node_modules/@arethetypeswrong/cli/dist/index.js"), tarball, "--profile", "esm-only", "--format", "ascii"],
      app,
    );
  });

  test("a plain .mjs file imports the package and one SGD step on a ViT adapter lowers the batch's loss", async () => {
    copyFileSync(join(CONSUMER, "train-step.mjs"), join(app, "train-step.mjs"));
    const r = await runAsync(process.execPath, ["train-step.mjs", join(ROOT, "test/fixtures/hf-tiny/vit")], app);
    const { before, after, pngPath } = JSON.parse(r.stdout);
    assert.ok(Number.isFinite(before) && after < before, `loss ${before} → ${after}`);
    assert.deepEqual([...readFileSync(join(app, pngPath)).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "the plot is a PNG");
  });

  test("a project with no install-script policy installs it offline and trains on the CPU", async () => {
    // onnxruntime-node's script cannot fetch the CUDA provider here: npm drops that optional
    // dependency and the graphs run on onnxruntime-web's WebAssembly build
    const plain = join(dirname(app), "plain");
    mkdirSync(plain);
    copyFileSync(tarball, join(plain, packed.filename));
    const manifest = { name: "consumer", private: true, type: "module", dependencies: { tenslora: `file:${packed.filename}` } };
    writeFileSync(join(plain, "package.json"), JSON.stringify(manifest, null, 2));
    writeFileSync(join(plain, "package-lock.json"), JSON.stringify(consumerLock(readFileSync(tarball)), null, 2));
    await runAsync("npm", ["install", "--offline", "--no-audit", "--no-fund"], plain);
    copyFileSync(join(CONSUMER, "train-step.mjs"), join(plain, "train-step.mjs"));
    const r = await runAsync(process.execPath, ["train-step.mjs", join(ROOT, "test/fixtures/hf-tiny/vit")], plain);
    const { before, after } = JSON.parse(r.stdout);
    assert.ok(Number.isFinite(before) && after < before, `loss ${before} → ${after}`);
  });

  test("a .ts consumer type-checks against the shipped declarations under moduleResolution nodenext", async () => {
    copyFileSync(join(CONSUMER, "consumer.ts"), join(app, "consumer.ts"));
    const tsconfig = {
      compilerOptions: {
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        typeRoots: [join(ROOT, "node_modules/@types")],
        types: ["node"],
      },
      files: ["consumer.ts"],
    };
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify(tsconfig));
    await runAsync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app);
  });

  test("the installed `tenslora --help` runs the compiled CLI", async () => {
    assert.ok(!existsSync(join(app, "node_modules/tsx")), "tsx is a development tool: the package must not need it");
    const r = await runAsync(join(app, "node_modules/.bin/tenslora"), ["--help"], app);
    assert.match(r.stdout, /^Usage: tenslora /m);
    assert.match(r.stdout, /\btrain\b/);
  });

  test("the installed `tenslora studio --build-only` bundles the page from the compiled modules", async () => {
    const out = join(app, "studio");
    await runAsync(join(app, "node_modules/.bin/tenslora"), ["studio", "--build-only", "--no-backbone", "--out", out], app);
    for (const f of ["index.html", "lm.html", "studio.css", "app.js", "worker.js", "lm-page.js", "lm-worker.js", "digits.bin"])
      assert.ok(existsSync(join(out, f)), `studio/${f} is missing`);
    assert.ok(
      readdirSync(join(out, "ort")).some((f) => f.endsWith(".wasm")),
      "onnxruntime-web's WebAssembly is missing",
    );
  });

  test("the browser entry bundles for the browser platform without any Node module", async () => {
    copyFileSync(join(CONSUMER, "browser.mjs"), join(app, "browser.mjs"));
    const result = await esbuild.build({
      entryPoints: [join(app, "browser.mjs")],
      absWorkingDir: app,
      bundle: true,
      platform: "browser",
      format: "esm",
      splitting: true,
      outdir: join(app, "bundle"),
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((p) => p.endsWith("node_modules/tenslora/dist/src/browser.js")));
    const node = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const reached = Object.entries(result.metafile.inputs).flatMap(([file, i]) =>
      i.imports.filter((imp) => node.has(imp.path)).map((imp) => `${file} → ${imp.path}`),
    );
    assert.deepEqual(reached, []);
  });
});
