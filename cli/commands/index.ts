/** Every subcommand's registration, in help order. */
import type { Command } from "commander";
import { register as compare } from "./compare.ts";
import { register as train } from "./train.ts";

export type Register = (program: Command) => void;

export const commands: Register[] = [train, compare];
