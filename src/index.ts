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
export { customVjp, type RegionRule } from "./ir/custom-vjp.ts";
export { checkpoint } from "./ir/checkpoint.ts";
export { gradCheck } from "./runtime/grad-check.ts";
export { compile, nodeRuntime, type CompileOptions } from "./runtime/session.ts";
export type { CompiledGraph, Compiler, Runtime } from "./runtime/types.ts";
export { type HostTensor, f32, i64, hostTensor } from "./tensor/host.ts";
export { exportModel } from "./onnx/export.ts";
export { WeightStore } from "./onnx/weight-store.ts";
// models
export { loadModel, readModelConfig, FAMILIES, type FamilyEntry, type LoadedModel, type LoadOptions } from "./models/load.ts";
export { buildModelGraph, type GraphSpec, type TrainableSet } from "./pipeline/build.ts";
export { modelContext, createAdapter } from "./pipeline/context.ts";
export { loadAdapterForConfig } from "./pipeline/adapter-for-config.ts";
export { BASE_DTYPES, type BaseDType, parseBaseDType, withBaseDType, floatWeights } from "./models/quantize-base.ts";
export { QUANT_BLOCK, type QuantizedMatrix, quantizeMatrix, float16Matrix, dequantizeMatrix } from "./tensor/quantize.ts";
export type { ModelFamily, Task } from "./models/types.ts";
export { MODEL_PRESETS, modelConfigFor, modelShapeFor, modelSitesFor, modelDefaultTargets } from "./pipeline/presets.ts";
// adapters
export {
  CONSTRUCTIONS,
  type Construction,
  type ModelShape,
  modeNames,
  modeSizes,
  parseConstruction,
  tensorCount,
  tensorModes,
} from "./adapters/constructions.ts";
export { type AdapterMethod, ADAPTER_METHODS, methodOf } from "./adapters/methods.ts";
export { FACTORIZATIONS, parseFactorization } from "./adapters/factorizations/index.ts";
export { PRESETS, parsePreset, presetOptions } from "./adapters/presets/index.ts";
export {
  paramCount,
  isoLoRA,
  loraEquivalentRank,
  ranksForBudget,
  groupRanksForBudget,
  loraPerRank,
  DEFAULT_RANK_SLACK,
  type Factorization,
} from "./adapters/params.ts";
export { planAdapter, type AdapterConfig, type AdapterGroup, type AdapterOptions } from "./adapters/config.ts";
export { type AdapterSet, createAdapterSet, groupState, adapterParamCount } from "./adapters/adapter-set.ts";
export type { LinearSite, ProjectionHook, SiteHeads } from "./nn/sites.ts";
export { planGroups, withoutHeads, type GqaMode, type GroupPlan, type GroupMember } from "./adapters/groups.ts";
export { selectSites, parseTargetModules, ALL_LINEAR, type TargetModules, type Targets } from "./adapters/targets.ts";
export { saveAdapter, loadAdapter } from "./adapters/format.ts";
export { loraModules, saveLoraFolder, type LoraModule } from "./adapters/export.ts";
export { exportAsLora, type ExportResult } from "./experiments/export.ts";
export { GGUF_OUT_TYPES, type GgufExportResult, type GgufOutType, exportAsGguf } from "./experiments/gguf-export.ts";
export { mergeAdapter, unmergeAdapter } from "./adapters/merge.ts";
export { multilinearSpectrum, stackAdapterUpdates, numericalRank, STACK_MODE_NAMES, type ModeSpectrum } from "./adapters/analysis.ts";
// io
export { readSafetensors, writeSafetensors } from "./io/safetensors.ts";
export { writeFileAtomic } from "./io/atomic-file.ts";
export { downloadModel, DownloadError } from "./io/hub.ts";
export { hubCacheDir, cachedSnapshot, looksLikeRepoId, resolveModelFromCache } from "./io/hub-cache.ts";
export { acquireLock, LockedError } from "./io/lock.ts";
// data
export * from "./data/index.ts";
// training
export { CLASSIFICATION_METRICS as METRICS, metricValue, predict, type MetricName } from "./tasks/classification.ts";
export { train, type TrainConfig, type TrainEvent, type RunSetup, type RunResult } from "./train/trainer.ts";
export { adamw, clipByGlobalNorm, flattenParams, segmentViews } from "./train/optim.ts";
export { warmupCosine, constant } from "./train/schedule.ts";
export { summarize, confusionMatrix, type MetricsSummary } from "./tasks/metrics.ts";
export { writePlot, renderLinePlot, renderScatterPlot } from "./train/plot.ts";
export { imageTaskData, textTaskData, IGNORE_LABEL, type EvalSplit, type TaskData } from "./tasks/task-data.ts";
export { saveTrained, loadTrained, saveModelFolder, type Trained } from "./train/artifacts.ts";
// experiments (what the CLI runs)
export { runTraining, prepareData, adapterFor, trainConfig, writeRunPlots, METHODS, checkRunOptions } from "./experiments/run.ts";
export { compare, markdownTable, isFractionMetric, DEFAULT_METHODS, type CompareOptions, type CompareResult, type CompareRow } from "./experiments/compare.ts";
export {
  compareOptions,
  planCompare,
  runOne,
  runDir,
  resolveBudget,
  writeResults,
  type CompareJob,
  type ComparePlan,
  type ResolvedBudget,
  type RunSummary,
} from "./experiments/compare.ts";
export { checkCompareFolder, recordCompareFolder } from "./experiments/compare-folder.ts";
export { expandArms, parseBudgets, parseLrs, parseSeeds, budgetLabel, type Arm, type ArmGrid, type Budget, type RankMode } from "./experiments/arms.ts";
export { meanInterval, pairedComparison, signTest, tQuantile, type Interval, type PairedComparison } from "./experiments/stats.ts";
export { splitValidation, validationIndices } from "./train/validation.ts";
export { ranksFromEnergy, modeEnergies } from "./adapters/energy-ranks.ts";
export type { HeadLayout } from "./adapters/reference.ts";
export { openDataset, detectFormat, taskDataFor, modelImageConfig, DATA_FORMATS, type DataFormat } from "./experiments/datasets.ts";
export { ensureEmbeddedModel, loadEmbedded, embeddedTransferData, cacheDir } from "./experiments/embedded.ts";
export { runClaims, claimTasks, CLAIM_TASKS, type ClaimsTable } from "./experiments/claims.ts";
export { claimsMarkdown } from "./experiments/claims-doc.ts";
export {
  DEFAULTS,
  EMBEDDED_OVERRIDES,
  EMBEDDED_LM_OVERRIDES,
  EMBEDDED_TEXT_OVERRIDES,
  applyConfig,
  parseRanks,
  type RunConfig,
} from "./experiments/run-config.ts";
export { EMBEDDED_BENCHMARKS, embeddedOverrides, type EmbeddedBenchmark } from "./experiments/embedded-benchmarks.ts";
export { TASKS, taskNamed, taskOf, type EvalReport, type TaskSpec } from "./tasks/index.ts";
export { loadConfigFile } from "./experiments/config-file.ts";
export {
  loadTrainedModel,
  readModelInputs,
  checkInputs,
  imageInputs,
  textInputs,
  runInference,
  writeOutputs,
  predictions,
  tokenTags,
  type TokenTag,
  textArg,
  evaluateTrained,
  evaluateTaskData,
  evalTable,
  type TrainedModel,
  type InferenceOutputs,
  type Prediction,
  type EvalOptions,
  type EvalResult,
  type LmEvalResult,
  type TokenEvalResult,
} from "./experiments/infer.ts";
export {
  mergeToFolder,
  mergedWeights,
  exportOnnx,
  ONNX_DIR,
  ONNX_FILE,
  ONNX_QUANTIZED_FILE,
  ONNX_DATA_FILE,
  type MergeOptions,
  type MergeResult,
  type OnnxExportOptions,
} from "./experiments/merge.ts";
export { randomModel } from "./models/init.ts";
export { Generator, type GenerateOptions, type StepTokens } from "./generate/generate.ts";
export { generateText, chatPrompt, type TextGenerateOptions, type TextDelta } from "./generate/text.ts";
export { TokenSampler, type SamplingOptions } from "./generate/sampling.ts";
export { LmTokenizer, type ChatMessage } from "./data/lm-data.ts";
