/** The external-data file of a model's graphs (export.ts writes the protos that point into it). */
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { namingPath } from "../io/atomic-file.ts";
import { alive } from "../io/lock.ts";
import type { HostData } from "../ir/graph.ts";
import type { ExternalWeights } from "./export.ts";
import { bytesOf } from "./proto.ts";

/** Page-multiple offsets let ONNX Runtime memory-map each tensor. */
const ALIGN = 64 * 1024;

/** A store's folder names its process, so folders left by a killed process can be told from live ones. */
const PREFIX = "tenslora-";
const OWNED = /^tenslora-(\d+)-/;
let sweptStale = false;

/** Remove the temp folders of processes that are gone (killed before their dispose); once per process. */
function removeStaleFolders(): void {
  if (sweptStale) return;
  sweptStale = true;
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(OWNED.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {} // another user's folder: theirs to remove
  }
}

/** An append-only external-data file in a private temp folder, one per model, shared by its graphs. */
export class WeightStore implements ExternalWeights {
  readonly dir: string;
  readonly file = "weights.bin";
  #fd: number;
  #size = 0;
  // weak: data derived at export (int8 nibble planes) is not held once its bytes are in the file
  #offsets = new WeakMap<HostData, { offset: number; length: number }>();

  constructor() {
    removeStaleFolders();
    this.dir = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
    this.#fd = openSync(join(this.dir, this.file), "w");
  }

  /** Where `data` lives in the file, writing it on first use. */
  locate(data: HostData): { file: string; offset: number; length: number } {
    let loc = this.#offsets.get(data);
    if (!loc) {
      const offset = Math.ceil(this.#size / ALIGN) * ALIGN;
      const bytes = bytesOf(data);
      // writeSync takes at most 2 GiB per call.
      namingPath(join(this.dir, this.file), () => {
        for (let done = 0; done < bytes.length; ) done += writeSync(this.#fd, bytes, done, Math.min(bytes.length - done, 1 << 30), offset + done);
      });
      loc = { offset, length: bytes.length };
      this.#size = offset + bytes.length;
      this.#offsets.set(data, loc);
    }
    return { file: this.file, ...loc };
  }

  /** Write a model file beside the weights (its external data is resolved relative to it); returns its path. */
  writeModel(name: string, bytes: Uint8Array): string {
    const path = join(this.dir, name);
    namingPath(path, () => writeFileSync(path, bytes));
    return path;
  }

  /** Delete the external weight file. */
  dispose(): void {
    closeSync(this.#fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
