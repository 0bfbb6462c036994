/** The task registry: a model family names its task, the task says how it is trained and judged. */
import type { Task } from "../models/types.ts";
import { causalLm } from "./causal-lm.ts";
import { imageClassification, textClassification } from "./classification.ts";
import { tokenClassification } from "./token-classification.ts";
import type { TaskSpec } from "./types.ts";

export const TASKS: Record<Task, TaskSpec> = {
  "image-classification": imageClassification,
  "text-classification": textClassification,
  "token-classification": tokenClassification,
  "causal-lm": causalLm,
};

export const taskOf = (name: Task): TaskSpec => TASKS[name];
export type { TaskSpec } from "./types.ts";
