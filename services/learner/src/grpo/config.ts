// A GRPO stage's settings with the defaults filled in, in the algorithms' vocabulary.
import { AdvantageEstimator, ImportanceSamplingMode, KlEstimator, LossAggregation, Schedule, ScheduleKind as AlgoScheduleKind } from '@temper/algorithms';
import type { StepOptions } from '@temper/native';
import {
  AdvantageEstimator as ProtoAdvantage,
  DataSource,
  EnvironmentSpec,
  GrpoStage,
  KlEstimator as ProtoKl,
  LossAggregation as ProtoLoss,
  SamplingParams,
  ScheduleKind,
} from '@temper/proto';
import type { GrpoLossConfig } from '@temper/training';
import { AdapterSettings, adapterSettings } from '../stages/adapter';

export interface GrpoSettings {
  task?: DataSource;
  steps: number;
  promptsPerStep: number;
  groupSize: number;
  sampling: SamplingParams;
  estimator: AdvantageEstimator;
  aggregation: LossAggregation;
  clipEpsLow: number;
  clipEpsHigh: number;
  ratioLevel: 'token' | 'sequence';
  numIterations: number;
  klBeta: number;
  klEstimator: KlEstimator;
  /** Truncated importance sampling of the rollout/training mismatch; undefined: off. */
  importanceSampling?: { mode: ImportanceSamplingMode; cap: number };
  /** 1: every token trains. */
  topEntropyQuantile: number;
  /** Adapters that train on the frozen base; undefined: all weights train. */
  adapter?: AdapterSettings;
  /** What a full-weight stage's KL reference model is held in. */
  referencePrecision: 'fp32' | 'bf16';
  dynamicSampling: boolean;
  filterOverlong: boolean;
  microBatchSize: number;
  stage: GrpoStage;
  maxPolicyLag: number;
  saveEvery: number;
  evalEvery: number;
  /** Multi-turn rollouts with this environment (the user's module's source read in). */
  environment?: EnvironmentSpec;
}

const advantages: Record<ProtoAdvantage, AdvantageEstimator> = {
  [ProtoAdvantage.ADVANTAGE_ESTIMATOR_UNSPECIFIED]: 'grpo',
  [ProtoAdvantage.ADVANTAGE_ESTIMATOR_GRPO]: 'grpo',
  [ProtoAdvantage.ADVANTAGE_ESTIMATOR_DR_GRPO]: 'dr_grpo',
  [ProtoAdvantage.ADVANTAGE_ESTIMATOR_RLOO]: 'rloo',
  [ProtoAdvantage.ADVANTAGE_ESTIMATOR_BATCH_STD]: 'batch_std',
  [ProtoAdvantage.UNRECOGNIZED]: 'grpo',
};
const losses: Record<ProtoLoss, LossAggregation> = {
  [ProtoLoss.LOSS_AGGREGATION_UNSPECIFIED]: 'grpo',
  [ProtoLoss.LOSS_AGGREGATION_GRPO]: 'grpo',
  [ProtoLoss.LOSS_AGGREGATION_BNPO]: 'bnpo',
  [ProtoLoss.LOSS_AGGREGATION_DR_GRPO]: 'dr_grpo',
  [ProtoLoss.UNRECOGNIZED]: 'grpo',
};
const kls: Record<ProtoKl, KlEstimator> = {
  [ProtoKl.KL_ESTIMATOR_UNSPECIFIED]: 'k3',
  [ProtoKl.KL_ESTIMATOR_K1]: 'k1',
  [ProtoKl.KL_ESTIMATOR_K2]: 'k2',
  [ProtoKl.KL_ESTIMATOR_K3]: 'k3',
  [ProtoKl.UNRECOGNIZED]: 'k3',
};

/** Zero in the message means "not set": these are the values used then. */
export function grpoDefaults(s: GrpoStage): GrpoSettings {
  const sampling = s.sampling ?? SamplingParams.fromPartial({});
  return {
    task: s.task ?? DataSource.fromPartial({ name: 'arithmetic', uri: 'builtin:arithmetic', weight: 1 }),
    steps: s.steps || 10,
    promptsPerStep: s.promptsPerStep || 8,
    groupSize: s.groupSize || 8,
    sampling: SamplingParams.fromPartial({
      ...sampling,
      temperature: sampling.temperature || 1,
      topP: sampling.topP || 1,
      maxNewTokens: sampling.maxNewTokens || 64,
    }),
    estimator: advantages[s.advantage],
    aggregation: losses[s.lossAggregation],
    clipEpsLow: s.clipEpsLow || 0.2,
    clipEpsHigh: s.clipEpsHigh || 0.28,
    ratioLevel: s.ratioLevel === 'sequence' ? 'sequence' : 'token',
    numIterations: s.numIterations || 1,
    klBeta: s.klBeta,
    klEstimator: kls[s.klEstimator],
    importanceSampling: s.importanceSamplingMode ? { mode: s.importanceSamplingMode as ImportanceSamplingMode, cap: s.importanceSamplingCap || 3 } : undefined,
    topEntropyQuantile: s.topEntropyQuantile || 1,
    adapter: s.adapter && adapterSettings(s.adapter, 'grpo.adapter').kind !== 'none' ? adapterSettings(s.adapter, 'grpo.adapter') : undefined,
    referencePrecision: referencePrecision(s),
    dynamicSampling: s.dynamicSampling,
    filterOverlong: s.filterOverlong,
    microBatchSize: s.microBatchSize || 16,
    stage: s,
    maxPolicyLag: s.maxPolicyLag,
    saveEvery: s.saveEvery || 10,
    evalEvery: s.evalEvery,
    environment: s.environment,
  };
}

export function lossConfig(g: GrpoSettings): GrpoLossConfig {
  return {
    epsLow: g.clipEpsLow,
    epsHigh: g.clipEpsHigh,
    beta: g.klBeta,
    klEstimator: g.klEstimator,
    level: g.ratioLevel,
    aggregation: g.aggregation,
    maxCompletionLength: g.sampling.maxNewTokens,
    numIterations: g.numIterations,
    microBatchSize: g.microBatchSize,
    importanceSampling: g.importanceSampling,
    topEntropyQuantile: g.topEntropyQuantile,
  };
}

export function optimizerOf(g: GrpoSettings): Omit<StepOptions, 'lr'> {
  const o = g.stage.optimizer;
  return {
    beta1: o?.beta1 || 0.9,
    beta2: o?.beta2 || 0.99,
    eps: o?.eps || 1e-8,
    weightDecay: o?.weightDecay ?? 0,
    maxGradNorm: o?.maxGradNorm || 1,
  };
}

const scheduleKinds: Record<ScheduleKind, AlgoScheduleKind> = {
  [ScheduleKind.SCHEDULE_KIND_UNSPECIFIED]: 'constant',
  [ScheduleKind.SCHEDULE_KIND_CONSTANT]: 'constant',
  [ScheduleKind.SCHEDULE_KIND_LINEAR]: 'linear',
  [ScheduleKind.SCHEDULE_KIND_COSINE]: 'cosine',
  [ScheduleKind.SCHEDULE_KIND_WARMUP_STABLE_DECAY]: 'warmup_stable_decay',
  [ScheduleKind.UNRECOGNIZED]: 'constant',
};

export function scheduleOf(g: GrpoSettings): Schedule {
  const s = g.stage.schedule;
  return {
    kind: scheduleKinds[s?.kind ?? ScheduleKind.SCHEDULE_KIND_UNSPECIFIED],
    peakLr: g.stage.optimizer?.lr || 1e-5,
    warmupSteps: s?.warmupSteps ?? 0,
    stableSteps: s?.stableSteps ?? 0,
    decaySteps: s?.decaySteps || (s?.kind === ScheduleKind.SCHEDULE_KIND_LINEAR || s?.kind === ScheduleKind.SCHEDULE_KIND_COSINE ? g.steps : 0),
    minLrRatio: s?.minLrRatio ?? 0,
    decayShape: s?.decayShape === 'linear' ? 'linear' : 'cosine',
  };
}

function referencePrecision(s: GrpoStage): 'fp32' | 'bf16' {
  const p = s.referencePrecision || 'fp32';
  if (p !== 'fp32' && p !== 'bf16') throw new Error(`grpo.reference_precision: "${p}" is not one of fp32, bf16`);
  if (p === 'bf16' && s.adapter && adapterSettings(s.adapter, 'grpo.adapter').kind !== 'none') {
    throw new Error('grpo.reference_precision: with an adapter the KL reference is the base itself; set grpo.adapter.base_precision instead');
  }
  return p;
}
