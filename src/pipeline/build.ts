/**
 * One graph per (model, adapter, batch shape, purpose): the forward pass, and for training the
 * loss and the gradients of every trainable parameter. Which weights are trainable is decided
 * here by name; frozen ones stay initializers.
 */
import { grad } from "../autodiff/vjp.ts";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { adapterHook } from "../adapters/inject.ts";
import { ConfigError } from "../errors.ts";
import * as b from "../ir/builder.ts";
import { type Dim, concrete } from "../ir/dtype-shape.ts";
import type { MaskSource } from "../ir/functional.ts";
import { Graph } from "../ir/graph.ts";
import { ParamScope, type WeightMap } from "../nn/params.ts";
import type { LoadedModel } from "../models/load.ts";
import type { DropoutOptions } from "../models/types.ts";
import { taskOf } from "../tasks/index.ts";

/** What is trained: adapter + head (the paper's setting), the head alone (linear probe), everything, or nothing. */
export type TrainableSet = "adapter+head" | "head" | "all" | "none";

/** What graph to build for a model: batch and length, adapter, trainable set, and loss, gradients or cache outputs. */
export interface GraphSpec {
  model: LoadedModel;
  adapter?: AdapterSet;
  /** A size, or a symbol ("batch_size") for a graph that runs at any batch size. */
  batch: Dim;
  /** Sequence length for text models (a size or a symbol). */
  seqLen?: Dim;
  /** Decoders: a graph for one step with a KV cache of this many past positions (a size or a symbol). */
  past?: Dim;
  /** Decoders: logits of the last position only. */
  lastLogits?: boolean;
  /** Recompute each layer's activations in the backward pass instead of keeping them (less memory, one more forward). */
  checkpointActivations?: boolean;
  /**
   * Compute the loss from `lossChunk` positions at a time (tasks with a chunked loss: causal LM),
   * never holding [B, T, vocab] logits; the graph then has no "logits" output. "auto": chunks
   * where the task has a chunked loss and the whole logits would be large (autoLossChunk).
   */
  lossChunk?: number | "auto";
  trainable: TrainableSet;
  /** Add the task's mean loss as output "loss" over a "labels" input. */
  loss?: boolean;
  /** With loss: add the task's soft-target loss over a "target" input [batch, targetSize] (TaskData.targetSize). */
  targetSize?: number;
  /** Add "grad.<name>" outputs for every trainable parameter (needs loss). */
  grads?: boolean;
  /** Include "last_hidden_state" among the outputs. */
  hiddenState?: boolean;
  dropout?: DropoutOptions;
  /** With dropout: masks become graph inputs "dropout_mask.<key>" (see BuiltGraph.masks). */
  feedMasks?: boolean;
}

/** A dropout mask the caller feeds: {0, 1/(1−p)} values of `shape` under input `name`. */
export interface MaskInput {
  name: string;
  shape: number[];
  p: number;
  key: number;
}

export interface BuiltGraph {
  graph: Graph;
  /** Trainable parameter names, in feed order. */
  trainable: string[];
  /** All weights the graph reads (model, adapter), by name. */
  weights: WeightMap;
  /** Dropout masks to feed (feedMasks). */
  masks: MaskInput[];
}

/** Logits larger than this many values are computed in chunks of at most LOSS_CHUNK_VALUES when the task can (128 and 32 MiB of float32). */
const LOSS_CHUNK_ABOVE = 2 ** 25;
const LOSS_CHUNK_VALUES = 2 ** 23;

/** Positions per loss chunk for logits [B, T, classes], or undefined where they are small enough whole (or symbolic). */
export function autoLossChunk(logitsShape: readonly Dim[]): number | undefined {
  const [B, T, C] = logitsShape;
  if (typeof B !== "number" || typeof T !== "number" || typeof C !== "number" || B * T * C <= LOSS_CHUNK_ABOVE) return undefined;
  return Math.max(1, Math.floor(LOSS_CHUNK_VALUES / (B * C)));
}

/** Build a model's forward graph (and, when asked, its loss and gradients) with an adapter applied. */
export function buildModelGraph(spec: GraphSpec): BuiltGraph {
  const { model, adapter } = spec;
  if (spec.trainable === "adapter+head" && !adapter) throw new ConfigError(`trainable "adapter+head" needs an adapter; use "head" for a linear probe`);
  if (spec.grads && !spec.loss) throw new ConfigError("gradients need the loss output");
  const weights: WeightMap = new Map(model.weights);
  for (const [k, t] of adapter?.tensors ?? []) weights.set(k, t);
  const task = taskOf(model.family.task);
  const head = new Set<string>(model.family.headParameters(model.config));
  const adapterNames = new Set(adapter?.tensors.keys() ?? []);
  const isTrainable = (name: string) =>
    spec.trainable === "all"
      ? true
      : spec.trainable === "head"
        ? head.has(name)
        : spec.trainable === "adapter+head"
          ? (task.trainsHeadWithAdapter && head.has(name)) || adapterNames.has(name)
          : false;
  const g = new Graph();
  const scope = new ParamScope(g, weights, isTrainable, model.quantized);
  let inputs: unknown;
  if (spec.past === undefined) inputs = model.family.inputs(scope, model.config, spec.batch, spec.seqLen);
  else if (model.family.cacheInputs && spec.seqLen !== undefined) inputs = model.family.cacheInputs(scope, model.config, spec.batch, spec.seqLen, spec.past);
  else throw new ConfigError(`a KV-cache graph needs a decoder model and a sequence length; ${model.family.modelType} is a ${model.family.task} model`);
  const masks: MaskInput[] = [];
  const source: MaskSource = (like, p, key) => {
    const m = { name: `dropout_mask.${key}`, shape: concrete(like.shape, "dropout mask"), p, key };
    masks.push(m);
    return g.input(m.name, like.dtype, m.shape);
  };
  const out = model.family.forward(scope, model.config, inputs, {
    hook: adapter ? adapterHook(adapter, (n) => scope.get(n)) : undefined,
    dropout: spec.dropout && (spec.feedMasks ? { ...spec.dropout, source } : spec.dropout),
    lastLogits: spec.lastLogits,
    checkpointLayers: spec.checkpointActivations,
  });
  const chunkable = spec.loss && task.chunkedLoss && out.head ? task.chunkedLoss : undefined;
  if (typeof spec.lossChunk === "number" && spec.lossChunk !== 0 && !chunkable) {
    throw new ConfigError(`a chunked loss needs a causal LM and the loss output; ${model.family.modelType} (${task.name}) computes its loss whole`);
  }
  const chunk = spec.lossChunk === "auto" ? chunkable && autoLossChunk(out.logits.shape) : spec.lossChunk;
  if (!chunk) g.output("logits", out.logits);
  if (spec.hiddenState) g.output("last_hidden_state", out.lastHiddenState);
  out.present?.forEach((kv, l) => {
    g.output(`present.${l}.key`, kv.key);
    g.output(`present.${l}.value`, kv.value);
  });
  // Parameters the forward never read (e.g. a head in a hidden-state-only graph) are not fed.
  const trainable = scope.trainable.map((t) => t.name);
  if (spec.loss) {
    const labels = g.input("labels", "int64", task.labelShape(spec.batch, spec.seqLen));
    let loss = chunk ? chunkable!(out.lastHiddenState, out.head!, labels, chunk) : task.loss(out.logits, labels);
    if (spec.targetSize !== undefined) {
      if (!task.targetLoss || chunk)
        throw new ConfigError(
          `soft targets need a task that trains on them and whole logits; ${task.name} ${chunk ? "computes its loss in chunks" : "has none"}`,
        );
      loss = b.add(loss, task.targetLoss(out.logits, g.input("target", "float32", [spec.batch, spec.targetSize])));
    }
    g.output("loss", loss);
    if (spec.grads) {
      const grads = grad(
        loss,
        scope.trainable.map((t) => t.value),
      );
      trainable.forEach((name, i) => g.output(`grad.${name}`, grads[i]));
    }
  }
  return { graph: g, trainable, weights, masks };
}
