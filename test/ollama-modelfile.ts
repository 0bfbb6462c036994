/**
 * Ollama's Modelfile rules, written out from its parser (parser/parser.go) for the tests that
 * check the Modelfiles `export --to gguf` writes: one command per line, its name case-insensitive
 * and one of Ollama's commands (FROM is stored as "model", PARAMETER takes a name then a value),
 * `#` starts a comment line, a value may be quoted with `"` or `"""` (then it may span lines), a
 * FROM is required; relative paths resolve against the Modelfile's folder (the `ollama create`
 * client passes `filepath.Dir(modelfile)`), `~` against the home folder.
 */
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

const COMMANDS = ["from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires"];

export interface ModelfileCommand {
  /** Lower-case command ("model" for FROM, the parameter's name for PARAMETER). */
  name: string;
  args: string;
}

/** Unquote a value as Ollama does; undefined while a quote is still open. */
function unquote(s: string): string | undefined {
  if (s.startsWith('"""')) return s.length >= 6 && s.endsWith('"""') ? s.slice(3, -3) : undefined;
  if (s.startsWith('"')) return s.length >= 2 && s.endsWith('"') ? s.slice(1, -1) : undefined;
  return s;
}

/** The commands of a Modelfile; throws where Ollama's parser would. */
export function parseModelfile(text: string): ModelfileCommand[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const out: ModelfileCommand[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/^[ \t]+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z]+)[ \t]+(.*)$/.exec(line);
    if (!m || !COMMANDS.includes(m[1].toLowerCase())) throw new Error(`(line ${i + 1}): command must be one of ${COMMANDS.join(", ")}`);
    let name = m[1].toLowerCase();
    let rest = m[2];
    if (name === "from") name = "model";
    if (name === "parameter") {
      const p = /^([A-Za-z0-9_]+)[ \t]+(.*)$/.exec(rest);
      if (!p) throw new Error(`(line ${i + 1}): unexpected EOF`);
      [name, rest] = [p[1], p[2]];
    }
    let value = unquote(rest.trim());
    while (value === undefined && i + 1 < lines.length) {
      rest += `\n${lines[++i]}`;
      value = unquote(rest.trim());
    }
    if (value === undefined) throw new Error(`unexpected EOF: ${rest}`);
    out.push({ name, args: value });
  }
  if (!out.some((c) => c.name === "model")) throw new Error("no FROM line");
  return out;
}

/** A FROM / ADAPTER path as `ollama create` resolves it for a Modelfile in `modelfileDir`. */
export function modelfilePath(arg: string, modelfileDir: string): string {
  if (isAbsolute(arg)) return resolve(arg);
  if (arg === "~" || arg.startsWith("~/")) return resolve(join(homedir(), arg.slice(1)));
  return resolve(join(modelfileDir, arg));
}
