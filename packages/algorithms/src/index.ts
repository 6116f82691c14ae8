export * from './advantages';
export * from './policy-loss';
export * from './schedules';
export * from './grpo-batch';
