// @temper/native: the engine's TypeScript face.
import { addon, BuildInfo, SafetensorsContents } from './addon';

export type { BuildInfo, Dtype, EngineConfig, Precision, SafetensorsContents, SafetensorsTensor } from './addon';
export { ARCHITECTURES, engineConfig } from './config';
export type { HfConfig, ModelType } from './config';
export { shardWeights } from './hf-files';
export { MODEL_PRESETS } from './presets';
export type { ModelPreset } from './presets';
export { Model } from './model';
export type {
  AdapterSpec,
  AdapterTarget,
  BatchShape,
  Completion,
  CreateOptions,
  DeviceOptions,
  FreezeOption,
  GenerateOptions,
  LoadOptions,
  LogprobsOptions,
  LogprobsResult,
  SaveAdaptersOptions,
  SaveOptions,
  StepOptions,
  TrainingOptions,
} from './model';

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

/** Threads of the pool behind sgemm (each Model has its own, set when it is made). */
export function setThreads(threads: number): void {
  addon.setThreads(threads);
}

/** Parses safetensors bytes with the engine's checked reader; any defect throws an Error. */
export function readSafetensors(bytes: Uint8Array): SafetensorsContents {
  return addon.readSafetensors(bytes);
}

/**
 * Frees the scratch memory the engine keeps for reuse between calls (activation and KV-cache
 * buffers go back to a cache instead of the system, because re-faulting fresh pages costs more
 * than the arithmetic); returns the bytes freed. Models stay usable.
 */
export function trimMemory(): number {
  return addon.trimMemory();
}
