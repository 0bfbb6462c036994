/**
 * ONNX model files for other programs to load: every weight inline when the model fits a protobuf
 * (2 GiB), else the weights in `<file>_data` beside it, the layout ONNX Runtime and
 * transformers.js (`use_external_data_format`) read.
 */
import { closeSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { namingPath, writeFileAtomic } from "../io/atomic-file.ts";
import type { WeightStore } from "./weight-store.ts";
import { type NodeProto, onnx } from "./proto.ts";

export type ModelProto = InstanceType<typeof onnx.ModelProto>;
type RawGraph = NonNullable<ModelProto["graph"]>;
export type TensorProto = NonNullable<RawGraph["initializer"]>[number];
type ValueInfo = NonNullable<RawGraph["input"]>[number];
/** The generated types mark every field optional; exported graphs have them all. */
export type GraphProto = { node: NodeProto[]; initializer: TensorProto[]; input: ValueInfo[]; output: ValueInfo[] };
export const graphOf = (p: ModelProto) => p.graph as unknown as GraphProto;

/** ONNX files are protobufs, which cannot exceed 2 GiB; past this total the weights go external. */
export const ONNX_INLINE_LIMIT = 2 ** 31 - 2 ** 26;
/** Initializers at least this large go to the external file when one is written. */
const EXTERNAL_MIN_BYTES = 1024;
const EXTERNAL_ALIGN = 4096;

const entry = (t: TensorProto, k: string) => Number(t.externalData!.find((e) => e.key === k)!.value);

/** Bring every initializer that lives in `store`'s file into the proto (rawData). */
export function inlineWeights(g: GraphProto, store: WeightStore): void {
  const fd = openSync(join(store.dir, store.file), "r");
  try {
    for (const t of g.initializer) {
      if (!t.externalData?.length) continue;
      const buf = new Uint8Array(entry(t, "length"));
      const at = entry(t, "offset");
      for (let done = 0; done < buf.length; ) done += readSync(fd, buf, done, Math.min(buf.length - done, 1 << 30), at + done);
      t.rawData = buf;
      t.externalData = [];
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Write `proto` (weights inline, see inlineWeights) as `dir/file`, moving weights to `file_data`
 * when their total exceeds `inlineLimit`. Returns the file names written. The data file is
 * complete before the model that points at it appears.
 */
export function writeModelFile(proto: ModelProto, dir: string, file: string, inlineLimit = ONNX_INLINE_LIMIT): string[] {
  const g = graphOf(proto);
  const total = g.initializer.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
  if (total <= inlineLimit) {
    writeFileAtomic(join(dir, file), onnx.ModelProto.encode(proto).finish());
    return [file];
  }
  const dataFile = `${file}_data`;
  const tmp = join(dir, `${dataFile}.tmp-${process.pid}`);
  const fd = openSync(tmp, "w");
  // the proto is encoded with the external references, then the tensors get their bytes back
  const moved: [TensorProto, Uint8Array][] = [];
  try {
    try {
      let offset = 0;
      for (const t of g.initializer) {
        const bytes = t.rawData;
        if (!bytes || bytes.length < EXTERNAL_MIN_BYTES) continue;
        offset = Math.ceil(offset / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
        namingPath(join(dir, dataFile), () => {
          for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), offset + done);
        });
        moved.push([t, bytes]);
        t.rawData = new Uint8Array();
        t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
        t.externalData = [
          { key: "location", value: dataFile },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(bytes.length) },
        ].map((e) => onnx.StringStringEntryProto.create(e));
        offset += bytes.length;
      }
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, dataFile));
    writeFileAtomic(join(dir, file), onnx.ModelProto.encode(proto).finish());
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    for (const [t, bytes] of moved) {
      t.rawData = bytes;
      t.externalData = [];
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    }
  }
  return [file, dataFile];
}
