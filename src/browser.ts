/**
 * TensLoRA-TS in the browser: the IR, autodiff, models, adapters, optimiser, training loop and
 * safetensors, with onnxruntime-web as the runtime and memory as the run store. Nothing here
 * touches a file system; weights and data arrive as bytes (fetched or uploaded).
 *
 * @example
 * const model = modelFromTensors(config, tensorsOf(parseSafetensors(bytes, "model.safetensors")), where, { numLabels: 5 });
 * const result = await train({ model, adapter, trainable: "adapter+head", data, config, store: memoryRunStore(), runtime: webRuntime("wasm") });
 */
export * from "./errors.ts";
export { Graph, Value } from "./ir/graph.ts";
export { grad } from "./autodiff/vjp.ts";
export type { CompiledGraph, Compiler, Runtime } from "./runtime/types.ts";
export { compileWeb, configureWeb, webRuntime, webgpuAdapter, type WebDevice } from "./runtime/session-web.ts";
export { type HostTensor, f32, i64, hostTensor } from "./tensor/host.ts";
export { exportModel } from "./onnx/export.ts";
export { modelFromTensors, FAMILIES, type LoadedModel } from "./models/assemble.ts";
export { randomModel } from "./models/init.ts";
export { buildModelGraph } from "./pipeline/build.ts";
export { modelContext, createAdapter } from "./pipeline/context.ts";
export { CONSTRUCTIONS } from "./adapters/constructions.ts";
export { paramCount, isoLoRA, ranksForBudget } from "./adapters/params.ts";
export { adapterFiles, adapterFromFiles, ADAPTER_CONFIG, ADAPTER_WEIGHTS } from "./adapters/adapter-files.ts";
export { parseSafetensors, serializeSafetensors, float32Inputs } from "./io/safetensors-bytes.ts";
export { toFloat32 } from "./io/dtype-convert.ts";
export { predict } from "./tasks/classification.ts";
export { train, type TrainConfig, type TrainEvent, type RunResult } from "./train/trainer.ts";
export { memoryRunStore, type MemoryRunStore, type RunStore } from "./train/run-store.ts";
export { type TaskData, lmTaskData } from "./tasks/task-data.ts";
export { TextTokenizer } from "./data/text-tokenizer.ts";
export { type LmExample, type LmRecord, LmTokens, buildLmExamples, holdOut, lmRecordsOf, padIdOf } from "./data/lm-records.ts";
export { BASE_DTYPES, type BaseDType, parseBaseDType } from "./models/quantize-base.ts";
export { heldBytes } from "./tensor/quantize.ts";
export type { ImageItem } from "./data/types.ts";
export { trainedFiles, trainedHead, type Trained } from "./train/trained-files.ts";
export { assertFiniteLogits } from "./tasks/types.ts";
export { summarize, type MetricsSummary } from "./tasks/metrics.ts";
export { DEFAULTS, EMBEDDED_OVERRIDES, applyConfig, parseRanks, type RunConfig } from "./experiments/run-config.ts";
export { METHODS, adapterFor, trainConfig } from "./experiments/run-plan.ts";
export { EMBEDDED_CONFIG, PRETRAIN_CONFIG, SOURCE, TARGET, decodeDigits, pretrainTask, transferTask } from "./experiments/embedded-task.ts";
