// @temper/native: the engine's TypeScript face.
import { addon, BuildInfo } from './addon';

export type { BuildInfo };

/** How the addon was built: its backends, BLAS, whether CUDA is compiled in. */
export function buildInfo(): BuildInfo {
  return addon.buildInfo();
}

/** CUDA devices the runtime sees (0, with the reason, when none can be used). */
export function cudaDevices(): { count: number; reason?: string } {
  return addon.cudaDevices();
}

/** C[m,n] = A[m,k] · B[k,n], row-major fp32, on the CPU backend's BLAS. */
export function sgemm(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  return addon.sgemm(a, b, m, k, n);
}
