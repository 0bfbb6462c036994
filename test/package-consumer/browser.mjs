// A browser app's use of the library: bundled for the browser platform, it must reach no Node module.
import { memoryRunStore, train, webRuntime } from "tenslora/browser";

export const start = (setup) => train({ ...setup, store: memoryRunStore(), runtime: webRuntime("wasm") });
