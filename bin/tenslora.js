#!/usr/bin/env node
// A checkout runs the CLI's TypeScript sources through tsx's loader, so `npm ci` needs no build step
// and an edit takes effect at once; the published package (which ships no sources) runs the
// compiled dist/. Deciding by the sources, not by dist/, keeps a stale build in a checkout from
// shadowing the code being edited.
import { existsSync } from "node:fs";

const source = new URL("../cli/main.ts", import.meta.url);
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else {
  await import("../dist/cli/main.js");
}
