/**
 * Learning-rate schedules: functions from the optimiser step (number of updates already applied,
 * so the first update uses `schedule(0)`) to the learning rate.
 */

import { ConfigError } from "../errors.ts";

export type LrSchedule = (step: number) => number;

export interface WarmupCosineOptions {
  /** Peak learning rate, reached at the end of warm-up. */
  baseLr: number;
  /** Learning rate at `totalSteps` and after; 0 gives HF's schedule exactly. */
  minLr: number;
  /** Step at which the cosine reaches `minLr`; usually the number of optimiser updates. */
  totalSteps: number;
  /** Linear warm-up steps from 0; with 0: `CosineAnnealingLR(T_max=totalSteps, eta_min=minLr)`. */
  warmupSteps: number;
}

/**
 * Linear warm-up then half a cosine, as HF `get_cosine_schedule_with_warmup` but decaying to
 * `minLr` instead of 0:
 *   t < w:      lr = baseLr · t / w
 *   w ≤ t < T:  lr = minLr + (baseLr − minLr) · (1 + cos(π (t − w) / (T − w))) / 2
 *   t ≥ T:      lr = minLr   (the closed forms would rise again; a run past T keeps the floor)
 * @example
 *   const lrAt = warmupCosine({ baseLr: 1e-3, minLr: 0, totalSteps: 1000, warmupSteps: 100 });
 *   lrAt(50); // 5e-4
 */
export function warmupCosine(options: WarmupCosineOptions): LrSchedule {
  const { baseLr, minLr, totalSteps, warmupSteps } = options;
  if (!(Number.isFinite(baseLr) && baseLr > 0)) {
    throw new ConfigError(`warmupCosine: baseLr must be a finite number > 0; got ${baseLr}`);
  }
  if (!(Number.isFinite(minLr) && minLr >= 0 && minLr <= baseLr)) {
    throw new ConfigError(`warmupCosine: minLr must lie in [0, baseLr = ${baseLr}]; got ${minLr}`);
  }
  if (!(Number.isSafeInteger(totalSteps) && totalSteps >= 1)) {
    throw new ConfigError(`warmupCosine: totalSteps must be an integer ≥ 1; got ${totalSteps}`);
  }
  if (!(Number.isSafeInteger(warmupSteps) && warmupSteps >= 0 && warmupSteps < totalSteps)) {
    throw new ConfigError(
      `warmupCosine: warmupSteps must be an integer in [0, totalSteps = ${totalSteps}); ` +
        `got ${warmupSteps}. Lower it or raise totalSteps so some steps decay`,
    );
  }
  const decaySteps = totalSteps - warmupSteps;
  return (step) => {
    checkStep(step);
    if (step < warmupSteps) return (baseLr * step) / warmupSteps;
    if (step >= totalSteps) return minLr;
    const progress = (step - warmupSteps) / decaySteps;
    return minLr + ((baseLr - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  };
}

/** The same learning rate at every step. */
export function constant(lr: number): LrSchedule {
  if (!(Number.isFinite(lr) && lr >= 0)) {
    throw new ConfigError(`constant: lr must be a finite number ≥ 0; got ${lr}`);
  }
  return (step) => {
    checkStep(step);
    return lr;
  };
}

function checkStep(step: number): void {
  if (!(Number.isFinite(step) && step >= 0)) {
    throw new ConfigError(`a schedule's step must be a finite number ≥ 0; got ${step}`);
  }
}
