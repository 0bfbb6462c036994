/**
 * Training progress for people (a bar: epoch, step, loss, lr, samples/s, ETA) or for scripts
 * (`--json`: one JSON object per line). ONNX Runtime blocks the event loop while a step runs,
 * so the bar is redrawn between steps: what it shows is always the last finished step.
 */
import cliProgress from "cli-progress";
import type { TrainEvent } from "../src/index.ts";

export interface Reporter {
  event(e: TrainEvent, label?: string): void;
  message(s: string): void;
  stop(): void;
}

const fmt = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)}h` : s >= 60 ? `${Math.floor(s / 60)}m${Math.round(s % 60)}s` : `${Math.round(s)}s`);

export function reporter(json: boolean): Reporter {
  if (json) {
    return {
      event: (e, label) => console.log(JSON.stringify(label ? { run: label, ...e } : e)),
      message: (s) => console.log(JSON.stringify({ type: "message", message: s })),
      stop: () => {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  let current = "";
  const interactive = Boolean(process.stderr.isTTY);
  return {
    event(e, label = "") {
      if (e.type === "step") {
        if (!bar || label !== current) {
          bar?.stop();
          current = label;
          bar = new cliProgress.SingleBar(
            {
              format: `${label ? label + " " : ""}{bar} {value}/{total} | epoch {epoch} | loss {loss} | lr {lr} | {sps} samples/s | ETA {eta_s}`,
              stream: process.stderr,
              noTTYOutput: true,
              notTTYSchedule: 10000,
              hideCursor: interactive,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.total, 0, { epoch: 1, loss: "-", lr: "-", sps: "-", eta_s: "-" });
        }
        bar.update(e.step, { epoch: e.epoch, loss: e.loss.toFixed(4), lr: e.lr.toExponential(2), sps: e.samplesPerSec.toFixed(0), eta_s: fmt(e.etaSec) });
        if (e.step === e.total) {
          bar.stop();
          bar = undefined;
        }
      } else if (e.type === "eval") {
        const text = `${label ? label + " " : ""}eval @ step ${e.step}: ${e.summary}${e.best ? " (best)" : ""}`;
        if (bar && interactive) process.stderr.write(`\r\x1b[K${text}\n`);
        else console.error(text);
      }
    },
    message: (s) => console.error(s),
    stop: () => bar?.stop(),
  };
}
