// The generator's settings from the environment: the engine precision knob.
import { generatorSettings } from '../src/settings';

describe('generator settings', () => {
  it('reads TEMPER_GENERATOR_PRECISION, leaving the engine default when unset', () => {
    expect(generatorSettings({}).precision).toBeUndefined();
    expect(generatorSettings({ TEMPER_GENERATOR_PRECISION: 'bf16' }).precision).toBe('bf16');
    expect(generatorSettings({ TEMPER_GENERATOR_PRECISION: 'fp32' }).precision).toBe('fp32');
  });

  it('refuses another precision, naming the variable', () => {
    expect(() => generatorSettings({ TEMPER_GENERATOR_PRECISION: 'fp16' })).toThrow(
      'TEMPER_GENERATOR_PRECISION must be "fp32" or "bf16" (got "fp16")',
    );
  });
});
