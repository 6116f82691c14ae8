// A reward spec that cannot be used: `field` names the offending path
// ("spec.components[1].options.n") so gRPC can answer INVALID_ARGUMENT with it and the
// CLI can point at the line to fix.
export class RewardSpecError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'RewardSpecError';
  }
}
