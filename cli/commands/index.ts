/** Every subcommand's registration, in help order. */
import type { Command } from "commander";

export type Register = (program: Command) => void;

export const commands: Register[] = [];
