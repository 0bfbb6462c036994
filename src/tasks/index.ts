/** The task registry: a model family names its task, the task says how it is trained and judged. */
import type { Task } from "../models/types.ts";
import { causalLm } from "./causal-lm.ts";
import { imageClassification, textClassification } from "./classification.ts";
import { tokenClassification } from "./token-classification.ts";
import { maskedLm } from "./masked-lm.ts";
import type { DataKind, TaskSpec } from "./types.ts";

/** Every task by name. */
export const TASKS: Record<Task, TaskSpec> = {
  "image-classification": imageClassification,
  "text-classification": textClassification,
  "token-classification": tokenClassification,
  "causal-lm": causalLm,
  "masked-lm": maskedLm,
};

/** The task of a name already checked to be one (a family's head names it). */
export const taskOf = (name: Task): TaskSpec => TASKS[name];

/** The task of a name from the command line or a file; undefined for a name no task has. */
export const taskNamed = (name: string): TaskSpec | undefined => (Object.hasOwn(TASKS, name) ? TASKS[name as Task] : undefined);

/** The task data of `kind` means on a model that does several (tagged words: token classification); undefined where the model's own head decides. */
export const taskPickedBy = (kind: DataKind): Task | undefined => Object.values(TASKS).find((t) => t.pickedByData && t.dataKind === kind)?.name;

export type { DataKind, EvalReport, TaskSpec } from "./types.ts";
