// Learning-rate schedules, as a function of the optimiser step (0-based).
//
//   constant              warm-up, then the peak rate
//   linear | cosine       warm-up, then decay over decaySteps to minLrRatio · peak
//   warmup_stable_decay   warm-up, a constant (stable) phase of stableSteps, then a linear or
//                         cosine decay over decaySteps to the floor: the Stable-then-Decay
//                         schedule of mid-training, whose decay phase can fork into branches
//
// Warm-up is linear from 0 (step 0 trains at 0, as in Hugging Face's schedulers).

export type ScheduleKind = 'constant' | 'linear' | 'cosine' | 'warmup_stable_decay';

export interface Schedule {
  kind: ScheduleKind;
  peakLr: number;
  warmupSteps?: number;
  stableSteps?: number;
  decaySteps?: number;
  /** Floor of the decay as a fraction of the peak (default 0). */
  minLrRatio?: number;
  /** Shape of warmup_stable_decay's decay (default cosine). */
  decayShape?: 'cosine' | 'linear';
}

export function learningRate(step: number, s: Schedule): number {
  if (!(step >= 0)) throw new Error(`step must be >= 0 (got ${step})`);
  const warmup = s.warmupSteps ?? 0;
  const floor = s.minLrRatio ?? 0;
  if (step < warmup) return (s.peakLr * step) / warmup;
  switch (s.kind) {
    case 'constant':
      return s.peakLr;
    case 'linear':
    case 'cosine':
      return s.peakLr * decayFactor(step - warmup, s.decaySteps ?? 0, floor, s.kind);
    case 'warmup_stable_decay': {
      const intoDecay = step - warmup - (s.stableSteps ?? 0);
      if (intoDecay < 0) return s.peakLr;
      return s.peakLr * decayFactor(intoDecay, s.decaySteps ?? 0, floor, s.decayShape ?? 'cosine');
    }
  }
}

/** The step at which the decay of a warmup_stable_decay schedule begins (where branches fork). */
export function decayStart(s: Schedule): number {
  return (s.warmupSteps ?? 0) + (s.stableSteps ?? 0);
}

// From 1 at the start of the decay to `floor` after `steps` steps, and `floor` after that.
function decayFactor(stepInDecay: number, steps: number, floor: number, shape: 'linear' | 'cosine'): number {
  if (steps <= 0) return floor;
  const progress = Math.min(1, stepInDecay / steps);
  const shaped = shape === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return floor + (1 - floor) * shaped;
}
