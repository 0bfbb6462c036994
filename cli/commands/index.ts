/** Every subcommand's registration, in help order. */
import type { Command } from "commander";
import { register as analyze } from "./analyze.ts";
import { register as compare } from "./compare.ts";
import { register as download } from "./download.ts";
import { register as evaluate } from "./eval.ts";
import { register as infer } from "./infer.ts";
import { register as merge } from "./merge.ts";
import { register as params } from "./params.ts";
import { register as train } from "./train.ts";
import { register as studio } from "./studio.ts";

export type Register = (program: Command) => void;

export const commands: Register[] = [train, evaluate, merge, infer, compare, params, analyze, download];
commands.push(studio);
