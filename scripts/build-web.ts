/**
 * The library's browser build: src/browser.ts as an ESM bundle in dist/browser/ (esbuild), with
 * onnxruntime-web's two builds as chunks loaded on first use. Run: npm run build:web
 */
import { bundleForBrowser } from "../studio/build.ts";

await bundleForBrowser({ tenslora: "src/browser.ts" }, "dist/browser");
console.log("dist/browser/tenslora.js (onnxruntime-web fetches its .wasm from ort.env.wasm.wasmPaths; see configureWeb)");
