// @temper/rewards: verifiable reward components and the reward spec that weighs them.
export * from './types';
export * from './errors';
export * from './spec';
export * from './spec-file';
export * from './registry';
export { textInScope, estimateTokens } from './text';
export { isEquivalent, defaultEquivalence, type EquivalenceOptions } from './answer/equivalence';
export { extractAnswer, type ExtractOptions, type Extracted, type AnswerSource } from './answer/extract';
export { normalizeAnswer } from './answer/normalize';
export { parseNumberLiteral } from './answer/numbers';
export { parseExpression, evaluate, variablesOf, type Expr } from './answer/expression';
export { judgeAnswer } from './components/accuracy';
