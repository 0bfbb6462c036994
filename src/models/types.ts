/** What every model family provides to adapters, training and the CLI. */
import type { Dim } from "../ir/dtype-shape.ts";
import type { MaskSource } from "../ir/functional.ts";
import type { Value } from "../ir/graph.ts";
import type { ParamScope } from "../nn/params.ts";
import type { HostTensor } from "../tensor/host.ts";
import type { WeightRule } from "../io/weight-map.ts";

export type { LinearSite, ProjectionHook } from "../nn/sites.ts";
import type { LinearSite, ProjectionHook } from "../nn/sites.ts";

export interface ForwardOptions {
  hook?: ProjectionHook;
  /** Dropout probabilities in training graphs (0 in evaluation). */
  dropout?: DropoutOptions;
  /** Causal LMs: logits of the last position only ([B, 1, vocab]), all generation reads. */
  lastLogits?: boolean;
  /** Training: recompute each layer's activations in the backward pass instead of keeping them (src/ir/checkpoint.ts). */
  checkpointLayers?: boolean;
}

export interface DropoutOptions {
  hidden: number;
  attention: number;
  seed: number;
  /** Masks from outside the graph (see MaskSource); default: ONNX Runtime's seeded Dropout. */
  source?: MaskSource;
}

export interface ModelOutputs {
  logits: Value; // [B, numLabels]; causal LMs [B, T, vocab]
  lastHiddenState: Value; // [B, T, d]
  /** Causal LMs: the LM head, logits of any positions of lastHiddenState (a chunked loss applies it piece by piece). */
  head?: (hidden: Value) => Value;
  /** With a KV cache: each layer's keys and values after this step, [B, H_kv, P+T, dh]. */
  present?: KeyValue[];
}

export interface KeyValue {
  key: Value;
  value: Value;
}

/** The task a model family's head serves. */
export type Task = "image-classification" | "text-classification" | "token-classification" | "causal-lm" | "masked-lm";

/** Shape facts adapters and rank budgets need. */
export interface BackboneShape {
  hidden: number;
  heads: number;
  layers: number;
}

/** What a model family provides: config parsing, its linear sites, weight names and its forward graph. */
export interface ModelFamily<C, I> {
  readonly modelType: string;
  /**
   * The HuggingFace class (config.json's `architectures`) a family with several heads is chosen
   * by; the family registered first for a model type needs none.
   */
  readonly architecture?: string;
  readonly task: Task;
  /** Parse and validate a config.json of this family. */
  parseConfig(raw: Record<string, unknown>, source: string): C;
  /** The backbone's dimensions (hidden size, heads, layers) for adapter shapes. */
  shape(cfg: C): BackboneShape;
  /** Every parameter's name and shape. */
  parameterShapes(cfg: C): Map<string, number[]>;
  /** Names of the classification head's parameters (trained with any adapter, re-initialised when labels differ). */
  headParameters(cfg: C): string[];
  /** Pretrained parameters a checkpoint may lack (BERT's pooler): initialised as HF does when it does (default: none). */
  optionalParameters?(cfg: C): string[];
  /** The most tokens one sequence may hold: the position table, less any offset (default: no limit). */
  maxSequenceLength?(cfg: C): number;
  /** Every linear layer an adapter can target, with its in/out sizes and heads. */
  linearSites(cfg: C): LinearSite[];
  /** Declare the graph inputs for a batch; returns them by HF name. */
  inputs(scope: ParamScope, cfg: C, batch: Dim, seqLen?: Dim): I;
  /**
   * Decoders: the inputs of an incremental step (input_ids, attention_mask over past + new tokens,
   * position_ids, past_key_values.N.key/value with `past` cached positions); forward then also
   * returns `present`.
   */
  cacheInputs?(scope: ParamScope, cfg: C, batch: Dim, seqLen: Dim, past: Dim): I;
  /** Build the forward graph from the model's inputs. */
  forward(scope: ParamScope, cfg: C, inputs: I, opts: ForwardOptions): ModelOutputs;
  /** Graph feeds from inputs named as HuggingFace names them (adds derived inputs such as position ids). */
  feeds(cfg: C, hf: Record<string, HostTensor>): Record<string, HostTensor>;
  /** The HF input names a batch must provide, and the optional ones. */
  readonly inputNames: { required: string[]; optional: string[] };
  /** The linear layers an adapter targets by default (default: query, key, value). */
  readonly adapterTargets?: readonly string[];
  /**
   * Every linear weight the forward reads goes through ParamScope.linear, so a quantized base may
   * hold them quantized (decoders; the encoders' MLPs read theirs directly). Default: false.
   */
  readonly quantizableBase?: boolean;
  /** Checkpoint keys to rename or ignore for this config (default: none). */
  checkpointRules?(cfg: C): WeightRule[];
  /** Graph inputs an exported model computes itself, because HF callers do not feed them (default: none). */
  exportDerivedInputs?(cfg: C): DerivedInput[];
  /** Causal LMs llama.cpp runs: how a GGUF file lays the model out (default: no GGUF export). */
  readonly llamaCpp?: LlamaCppLayout;
}

/** How llama.cpp runs a causal LM, as its converter convert_hf_to_gguf.py writes the model. */
export interface LlamaCppLayout {
  /** llama.cpp's architecture (`general.architecture`, the prefix of its hyperparameter keys). */
  readonly architecture: string;
  /**
   * llama.cpp rotates adjacent pairs where HF rotates the two halves of each head, so the rows of
   * Q and K are reordered within each head; false where llama.cpp rotates the halves (NeoX) too.
   */
  readonly permuteQK: boolean;
  /** llama.cpp reads Llama 3.1's "llama3" rotary scaling from a `rope_freqs` tensor for this architecture. */
  readonly ropeFreqs: boolean;
}

// The registry is heterogeneous by design: each family carries its own config and input types.
// biome-ignore lint/suspicious/noExplicitAny: each family's config and input types differ; callers go through the family's own methods
export type AnyFamily = ModelFamily<any, any>;

/** A model family as the registry holds it: its model type and its head for each task it does. */
export interface FamilyEntry {
  readonly modelType: string;
  /** The head for each task, the default first (the head a config.json gets whose `architectures` names no other). */
  readonly heads: Readonly<Partial<Record<Task, AnyFamily>>>;
  /**
   * Tasks whose head is built only when asked for (`--task`, pretraining), never because
   * config.json's `architectures` names it (published RoBERTa checkpoints name
   * RobertaForMaskedLM and are fine-tuned as classifiers).
   */
  readonly onRequest?: readonly Task[];
}

/** How an exported graph computes an input from `input_ids`. */
export type DerivedInput =
  /** Positions counted over the non-pad tokens and offset by the pad id; pads keep the pad id (RoBERTa). */
  | { name: "position_ids"; rule: "pad-offset"; padTokenId: number }
  /** One token type for every token. */
  | { name: "token_type_ids"; rule: "zeros" };
