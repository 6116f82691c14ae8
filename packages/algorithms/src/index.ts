export * from './advantages';
export * from './policy-loss';
export * from './schedules';
export * from './grpo-batch';
export * from './rollout-correction';
export * from './entropy-mask';
