/**
 * An output folder a command fills (`export`, `merge`): absent or empty, or emptied first when
 * the user asked to overwrite it, so what it holds afterwards is exactly what the command wrote.
 */
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";

export function takeOutFolder(dir: string, overwrite = false): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new ConfigError(`--out ${dir} is a file; pass a folder`);
  const held = readdirSync(dir);
  if (!held.length) return;
  if (!overwrite) {
    const shown = held.slice(0, 5).join(", ") + (held.length > 5 ? ", …" : "");
    throw new ConfigError(`--out ${dir} already holds files (${shown}); pass a new folder, or --overwrite to replace them`);
  }
  for (const n of held) rmSync(join(dir, n), { recursive: true, force: true });
}
