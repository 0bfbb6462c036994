/**
 * Training progress for people (a bar: epoch, step, loss, lr, samples/s, ETA) or for scripts
 * (`--json`: one JSON object per line). ONNX Runtime blocks the event loop while a step runs,
 * so the bar is redrawn between steps: what it shows is always the last finished step.
 */
import cliProgress from "cli-progress";
import { type TrainEvent, isFractionMetric } from "../src/index.ts";

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
        // the best evaluation is chosen on validation when there is a split: say so, with its value
        const shown = (v: number) => (isFractionMetric(e.metric) ? `${(100 * v).toFixed(2)}%` : v.toFixed(4));
        const val = e.validation !== undefined ? `; validation ${e.metric} ${shown(e.validation)}` : "";
        const text = `${label ? label + " " : ""}eval @ step ${e.step}: test ${e.summary}${val}${e.best ? ` (best ${e.validation !== undefined ? "validation" : "test"} so far)` : ""}`;
        if (bar && interactive) process.stderr.write(`\r\x1b[K${text}\n`);
        else console.error(text);
      }
    },
    message: (s) => console.error(s),
    stop: () => bar?.stop(),
  };
}

/**
 * A comparison's progress: one bar over all its runs (runs done / total, the current run and
 * step, an ETA from the time the finished work took), with each run's training quiet; `json`
 * keeps every event, as `reporter` does.
 */
export function compareReporter(json: boolean, total: number): Reporter & { runDone(line: string): void } {
  if (json) return { ...reporter(true), runDone: (line) => console.log(JSON.stringify({ type: "message", message: line })) };
  const t0 = Date.now();
  let done = 0;
  let fraction = 0; // of the current run
  const bar = new cliProgress.SingleBar(
    {
      format: "runs {bar} {value}/{total} | {run} {step} | ETA {eta_s}",
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 30000,
      hideCursor: Boolean(process.stderr.isTTY),
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { run: "", step: "", eta_s: "-" });
  const eta = () => {
    const work = done + fraction;
    return work > 0 ? fmt(((Date.now() - t0) / 1000 / work) * (total - work)) : "-";
  };
  const above = (s: string) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s}\n`);
    else console.error(s);
    bar.render();
  };
  return {
    event(e, label = "") {
      if (e.type !== "step") return;
      fraction = e.step / e.total;
      bar.update(done, { run: label, step: `step ${e.step}/${e.total}`, eta_s: eta() });
    },
    message: above,
    runDone(line) {
      done++;
      fraction = 0;
      bar.update(done, { step: "", eta_s: eta() });
      above(line);
    },
    stop: () => bar.stop(),
  };
}
