/**
 * TensLoRA-TS public API. Everything a user (and the `tenslora` CLI) needs is re-exported here.
 *
 * @example
 * import { loadModel, createAdapter, buildModelGraph, compile } from "tenslora";
 * const model = loadModel("./vit-base-patch16-224", { numLabels: 10 });
 * const adapter = createAdapter(model, { construction: "qkv_depth", ranks: [8, 8, 3, 12] });
 */
export * from "./errors.ts";
// graph IR, autodiff and runtime
export { Graph, Value, typecheck } from "./ir/graph.ts";
export * as ops from "./ir/builder.ts";
export * as nn from "./ir/functional.ts";
export { grad } from "./autodiff/vjp.ts";
export { gradCheck } from "./autodiff/grad-check.ts";
export { compile, CompiledGraph, type CompileOptions } from "./runtime/session.ts";
export { type HostTensor, f32, i64, hostTensor } from "./runtime/host.ts";
export { WeightStore, exportModel } from "./onnx/export.ts";
// models
export { loadModel, readModelConfig, FAMILIES, type LoadedModel, type LoadOptions } from "./models/load.ts";
export { buildModelGraph, type GraphSpec, type TrainableSet } from "./models/build.ts";
export { modelContext, createAdapter } from "./models/context.ts";
export type { LinearSite, ModelFamily, Task } from "./models/types.ts";
// adapters
export { CONSTRUCTIONS, type Construction, type ModelShape, modeNames, modeSizes, tensorCount } from "./adapters/constructions.ts";
export { paramCount, isoLoRA, loraEquivalentRank, ranksForBudget, type Factorization } from "./adapters/params.ts";
export { resolveAdapterConfig, type AdapterConfig, type AdapterOptions } from "./adapters/config.ts";
export { type AdapterSet, createAdapterSet, adapterShape, adapterState } from "./adapters/adapter-set.ts";
export { saveAdapter, loadAdapter } from "./adapters/format.ts";
export { mergeAdapter, unmergeAdapter } from "./adapters/merge.ts";
export { multilinearSpectrum, stackAdapterUpdates } from "./adapters/analysis.ts";
// io
export { readSafetensors, writeSafetensors } from "./io/safetensors.ts";
