/**
 * Builds the studio as static files: the page, its two bundles (esbuild), onnxruntime-web's
 * WebAssembly, the 10,000 digits and the pretrained backbone. Any static server can host the
 * folder; serve.ts adds the headers that let WebAssembly use threads.
 */
import { copyFileSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { writeFileAtomic } from "../src/io/atomic-file.ts";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { digits } from "../src/experiments/embedded.ts";
import { encodeDigits } from "../src/experiments/embedded-task.ts";
import { WEB_RUNTIME_FILES } from "../src/runtime/session-web.ts";

const SELF = fileURLToPath(import.meta.url);
const HERE = dirname(SELF);
/** The page's entry modules sit beside this one: TypeScript in a checkout, compiled JavaScript in the package. */
const EXT = extname(SELF);

/**
 * Every module of the library is free of side effects at import, so a module the browser code
 * does not use is dropped whole, with its Node imports; what is left must import no Node module.
 */
const sideEffectFree: esbuild.Plugin = {
  name: "side-effect-free",
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, async (args) => {
      if (args.pluginData === "inner") return undefined;
      const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: "inner" });
      if (r.errors.length) return { errors: r.errors };
      return { path: r.path, sideEffects: r.path.includes("node_modules") ? undefined : false };
    });
  },
};

/** Bundle browser entry points into `outDir`; throws naming each bundled module that imports a Node module. */
export async function bundleForBrowser(entries: Record<string, string>, outDir: string, minify = true): Promise<void> {
  const result = await esbuild.build({
    entryPoints: entries,
    outdir: outDir,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify,
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    sourcemap: "linked",
    metafile: true,
    logLevel: "silent",
    external: ["node:*"],
    plugins: [sideEffectFree],
  });
  const leaks: string[] = [];
  for (const out of Object.values(result.metafile.outputs)) {
    for (const imp of out.imports) if (imp.external) leaks.push(imp.path);
  }
  if (leaks.length) {
    const by = Object.entries(result.metafile.inputs).flatMap(([file, m]) => m.imports.filter((i) => leaks.includes(i.path)).map((i) => `${file} → ${i.path}`));
    throw new Error(`the browser bundle imports Node modules: ${by.join("; ")}`);
  }
}

export interface StudioBuild {
  /** The pretrained backbone folder (config.json + model.safetensors) to serve; none: the page pretrains. */
  backbone?: string;
}

/** Write the studio's static files to `outDir` (replaced atomically): the ViT page and the decoder page (lm.html). */
export async function buildStudio(outDir: string, o: StudioBuild = {}): Promise<string> {
  const tmp = `${outDir}.build-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "ort"), { recursive: true });
  await bundleForBrowser(
    { app: join(HERE, `app${EXT}`), worker: join(HERE, `worker${EXT}`), "lm-page": join(HERE, `lm-page${EXT}`), "lm-worker": join(HERE, `lm-worker${EXT}`) },
    tmp,
  );
  for (const f of ["index.html", "lm.html", "studio.css"]) copyFileSync(join(HERE, f), join(tmp, f));
  const ortDist = dirname(createRequire(import.meta.url).resolve("onnxruntime-web/webgpu"));
  for (const f of Object.values(WEB_RUNTIME_FILES).flat()) copyFileSync(join(ortDist, f), join(tmp, "ort", f));
  writeFileAtomic(join(tmp, "digits.bin"), encodeDigits(digits()));
  if (o.backbone) {
    mkdirSync(join(tmp, "backbone"));
    for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(o.backbone, f), join(tmp, "backbone", f));
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(dirname(outDir), { recursive: true });
  renameSync(tmp, outDir);
  return outDir;
}
