export * from './grpo-step';
