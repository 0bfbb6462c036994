// A TypeScript user of the installed package (moduleResolution nodenext): every entry point's
// types resolve, and they are real types, not `any` (each @ts-expect-error must find an error).
import { type LoadedModel, loadModel, paramCount } from "tenslora";
import { type RunConfig, webRuntime } from "tenslora/browser";
import { type SweepStatus, redactUrl } from "tenslora/sweep";

const model: LoadedModel = loadModel("./vit", { numLabels: 5 });
const params: number = paramCount("qkv_depth", { dIn: 64, dOut: 64, heads: 4, layers: 4, projections: ["query", "key", "value"] }, [4, 4, 3, 2]);
const runtime = webRuntime("wasm");
const url: string = redactUrl("redis://user:secret@localhost:6379");
export const used: [LoadedModel, number, typeof runtime, string] = [model, params, runtime, url];
export type Used = [RunConfig, SweepStatus];

// @ts-expect-error numLabels is a number
loadModel("./vit", { numLabels: "5" });
// @ts-expect-error the browser runtime is "wasm" or "webgpu"
webRuntime("cuda");
