/** Every subcommand's registration, in help order. */
import type { Command } from "commander";
import { register as analyze } from "./analyze.ts";
import { register as compare } from "./compare.ts";
import { register as download } from "./download.ts";
import { register as evaluate } from "./eval.ts";
import { register as exportAdapter } from "./export.ts";
import { register as generate } from "./generate.ts";
import { register as infer } from "./infer.ts";
import { register as merge } from "./merge.ts";
import { register as params } from "./params.ts";
import { register as train } from "./train.ts";
import { register as studio } from "./studio.ts";
import { register as sweep } from "./sweep.ts";
import { register as worker } from "./worker.ts";

export type Register = (program: Command) => void;

export const commands: Register[] = [train, evaluate, merge, infer, generate, compare, params, analyze, download, sweep, worker, exportAdapter];
commands.push(studio);
