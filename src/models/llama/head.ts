/** A decoder's head on the final-norm hidden states: the task it serves, its parameters and its logits. */
import type { Dim } from "../../ir/dtype-shape.ts";
import type { Value } from "../../ir/graph.ts";
import type { WeightRule } from "../../io/weight-map.ts";
import type { ParamScope } from "../../nn/params.ts";
import type { ForwardOptions, ModelOutputs, Task } from "../types.ts";
import type { DecoderConfig } from "./config.ts";

export interface DecoderHead {
  readonly task: Task;
  /** HuggingFace's class name after the model type's prefix ("ForCausalLM" → "LlamaForCausalLM"). */
  readonly classSuffix: string;
  /** The head's own parameters and their shapes (none when it reads the tied embedding). */
  shapes(cfg: DecoderConfig): [string, number[]][];
  /** The parameters trained with the head (re-initialised when labels differ). */
  headParameters(cfg: DecoderConfig): string[];
  /** Checkpoint keys this head does not read (another head's weights). */
  ignore(cfg: DecoderConfig): WeightRule[];
  /** Refuse a batch size the head cannot serve. */
  checkBatch?(cfg: DecoderConfig, batch: Dim): void;
  logits(s: ParamScope, cfg: DecoderConfig, inp: { inputIds: Value }, lastHiddenState: Value, opts: ForwardOptions): Pick<ModelOutputs, "logits" | "head">;
}
