import { buildInfo, cudaDevices, sgemm } from '@temper/native';

describe('native build', () => {
  it('links OpenBLAS and reports its backends', () => {
    const info = buildInfo();
    expect(info.backends[0]).toBe('cpu');
    expect(info.blas).toMatch(/OpenBLAS/);
    expect(info.backends.includes('cuda')).toBe(info.cudaCompiled);
  });

  it('multiplies through the CPU BLAS', () => {
    // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
    const c = sgemm(new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 2, 2, 2);
    expect(Array.from(c)).toEqual([19, 22, 43, 50]);
  });

  it('rejects wrong buffer lengths with the argument named', () => {
    expect(() => sgemm(new Float32Array(3), new Float32Array(4), 2, 2, 2)).toThrow(/a has 3 elements, expected 4/);
    expect(() => sgemm(new Float32Array(4), new Float32Array(4), 2, 0, 2)).toThrow(/k must be an integer/);
  });

  it('answers the CUDA device query without a device', () => {
    const d = cudaDevices();
    expect(d.count).toBeGreaterThanOrEqual(0);
    if (d.count === 0) expect(typeof d.reason).toBe('string');
  });
});
