// Compiles the library, the CLI and the studio to dist/ (ESM, .d.ts, source maps), then copies
// the files they read at run time beside them: the plot font (src/train/plot.ts looks two folders
// up from its module) and the studio page's HTML and CSS (studio/build.ts reads them from its own folder).
// Run by `npm run build` and by `prepack`, so the packed tarball always holds a fresh dist/.
import { spawnSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";

rmSync("dist", { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);
cpSync("assets/fonts", "dist/assets/fonts", { recursive: true });
for (const f of ["index.html", "lm.html", "studio.css"]) cpSync(`studio/${f}`, `dist/studio/${f}`);
