// device: 'cuda' where the backend or the device is missing: a clear Error naming what is
// missing, from the TypeScript face and from the addon's constructor itself, and the process
// lives on. Where a device is present, the model says which one it runs on.
import { buildInfo, cudaDevices, engineConfig, Model } from '@temper/native';

import { addon } from '../lib/addon';
import { tinyConfig } from './helpers';

const compiled = buildInfo().cudaCompiled;
const devices = cudaDevices();

describe('device options', () => {
  it('checks the options before looking for a device', async () => {
    await expect(Model.create(tinyConfig(), { device: 'cuda', precision: 'fp16' as 'bf16' })).rejects.toThrow(
      /precision must be "bf16" or "fp32" \(got fp16\)/,
    );
    await expect(Model.create(tinyConfig(), { device: 'cuda', maxSlots: -1 })).rejects.toThrow(/maxSlots must be a non-negative integer/);
    await expect(Model.create(tinyConfig(), { device: 'cuda', deviceIndex: 0.5 })).rejects.toThrow(/deviceIndex must be/);
    await expect(Model.create(tinyConfig(), { device: 'cpu', maxSlots: 4 })).rejects.toThrow(/maxSlots applies to device 'cuda' only/);
    await expect(Model.create(tinyConfig(), { device: 'cpu', precision: 'fp16' as 'bf16' })).rejects.toThrow(
      /precision must be "bf16" or "fp32" \(got fp16\)/,
    );
    await expect(Model.create(tinyConfig(), { device: 'gpu' as 'cuda' })).rejects.toThrow(/device "gpu" is not one of "cpu", "cuda"/);
  });

  it('rejects an unknown device in the addon too', () => {
    expect(() => new addon.NativeModel(engineConfig(tinyConfig()), 1, { device: 'tpu' as 'cuda', deviceIndex: 0, precision: 'bf16', maxSlots: 0 })).toThrow(
      /device must be "cpu" or "cuda" \(got "tpu"\)/,
    );
  });
});

(devices.count > 0 ? describe.skip : describe)(`device 'cuda' with no usable device (${compiled ? devices.reason : 'CUDA not compiled in'})`, () => {
  const expected = compiled
    ? /device 'cuda' requested but no CUDA device is usable: .+/
    : /device 'cuda' requested but this build of the engine has no CUDA backend/;

  it('Model.create and Model.load reject with the reason', async () => {
    await expect(Model.create(tinyConfig(), { device: 'cuda' })).rejects.toThrow(expected);
    await expect(Model.load('/nonexistent', { device: 'cuda' })).rejects.toThrow(expected);
  });

  it('the addon constructor throws the same (it never aborts the process)', () => {
    expect(() => new addon.NativeModel(engineConfig(tinyConfig()), 1, { device: 'cuda', deviceIndex: 0, precision: 'bf16', maxSlots: 0 })).toThrow(
      expected,
    );
    // Still alive, and the CPU still works.
    expect(() => new addon.NativeModel(engineConfig(tinyConfig()), 1)).not.toThrow();
  });
});

(devices.count > 0 ? describe : describe.skip)(`device 'cuda' with ${devices.count} device(s)`, () => {
  it('names the device it runs on', async () => {
    const m = await Model.create(tinyConfig({ head_dim: 16 }), { device: 'cuda', precision: 'fp32' });
    expect(m.device).toMatch(/^cuda: .+ \(sm_\d+, fp32\)$/);
    await expect(Model.create(tinyConfig(), { device: 'cuda', deviceIndex: devices.count })).rejects.toThrow(/deviceIndex/);
  });
});
