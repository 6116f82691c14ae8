// Loads the compiled addon (build/Release/temper_engine.node) with a clear error when the
// build is missing, instead of Node's bare "Cannot find module".
import * as fs from 'node:fs';
import * as path from 'node:path';

const addonPath = path.join(__dirname, '..', 'build', 'Release', 'temper_engine.node');

function load(): NativeAddon {
  if (!fs.existsSync(addonPath)) {
    throw new Error(
      `@temper/native: the engine addon is not built (${path.relative(process.cwd(), addonPath)} is missing). ` +
        'Run `npm ci` or `npm run rebuild -w @temper/native`.',
    );
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(addonPath) as NativeAddon;
}

export interface BuildInfo {
  backends: string[];
  cudaCompiled: boolean;
  blas: string;
  blasThreads: number;
}

export interface SafetensorsTensor {
  dtype: string;
  shape: number[];
  data: Float64Array;
}

export interface SafetensorsContents {
  metadata: Record<string, string>;
  tensors: Record<string, SafetensorsTensor>;
}

/** rope_scaling: none, linear (every frequency / factor) or llama3 (Llama 3.1+ frequency bands). */
export interface RopeScaling {
  kind: 'none' | 'linear' | 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/** The model shape the engine takes (lib/config.ts derives it from a Hugging Face config). */
export interface EngineConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositions: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** Qwen3: an RMSNorm over head_dim on every head of q and k before RoPE. */
  qkNorm: boolean;
}

export interface NativeAdapterSpec {
  r: number;
  alpha: number;
  useRslora: boolean;
  useDora: boolean;
  targetModules: string[];
}

export interface NativeCompletion {
  tokens: Int32Array;
  logprobs: Float32Array;
  finishReason: 'stop' | 'length';
}

export type Dtype = 'F32' | 'BF16';

/** One engine model; every method runs on a worker thread and settles a Promise. */
export interface NativeModel {
  loadWeights(paths: string[]): Promise<void>;
  initRandom(seed: number): Promise<void>;
  forward(tokens: Int32Array, batch: number, seqLen: number): Promise<Float32Array>;
  logprobs(
    tokens: Int32Array,
    batch: number,
    seqLen: number,
    lengths: Int32Array | null,
    entropy: boolean,
    grad: boolean,
  ): Promise<{ logprobs: Float32Array; entropy?: Float32Array }>;
  backward(dlogprob: Float32Array): Promise<void>;
  grads(): Promise<Record<string, Float32Array>>;
  weights(kind: 'trainable' | 'base' | 'adapters'): Promise<Record<string, Float32Array>>;
  zeroGrad(): Promise<void>;
  step(lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, maxGradNorm: number): Promise<number>;
  generate(
    prompts: Int32Array[],
    maxNewTokens: number,
    temperature: number,
    topP: number,
    topK: number,
    stopTokens: Int32Array,
    seed: number,
    n: number,
    seeds?: number[],
  ): Promise<NativeCompletion[]>;
  addAdapters(spec: NativeAdapterSpec, seed: number): Promise<void>;
  loadAdapters(spec: NativeAdapterSpec, path: string): Promise<void>;
  saveAdapters(path: string, dtype: Dtype): Promise<void>;
  mergeAdapters(): Promise<void>;
  freeze(): Promise<void>;
  exportAdapters(): Promise<Uint8Array>;
  importAdapters(bytes: Uint8Array): Promise<void>;
  setAdaptersEnabled(enabled: boolean): Promise<void>;
  setTrainingOptions(headChunkRows: number, recompute: boolean): Promise<void>;
  save(path: string, dtype: Dtype): Promise<void>;
  exportWeights(dtype: Dtype, merged: boolean): Promise<Uint8Array>;
  importWeights(bytes: Uint8Array): Promise<void>;
  saveOptimizer(path: string): Promise<void>;
  loadOptimizer(path: string): Promise<void>;
  /** "cpu", or "cuda: <device name> (sm_XY, bf16|fp32)". */
  device(): string;
}

/** Where a model computes; given to the NativeModel constructor (omitted: the CPU). */
export interface NativeDeviceOptions {
  device: 'cpu' | 'cuda';
  deviceIndex: number;
  precision: Precision;
  /** Completions holding a KV-cache slot at once during generate (0: as many as fit, up to 1024). */
  maxSlots: number;
  /** CPU only: the batch-invariant mode (DeviceOptions.batchInvariant). */
  batchInvariant?: boolean;
}

/** bf16: bf16 weights in products, fp32 accumulation, fp32 master weights and optimizer state. fp32: all fp32 (checking). */
export type Precision = 'bf16' | 'fp32';

export interface NativeAddon {
  buildInfo(): BuildInfo;
  cudaDevices(): { count: number; reason?: string };
  sgemm(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array;
  setThreads(threads: number): void;
  readSafetensors(bytes: Uint8Array): SafetensorsContents;
  trimMemory(): number;
  NativeModel: new (config: EngineConfig, threads: number, device?: NativeDeviceOptions, frozen?: boolean) => NativeModel;
}

export const addon: NativeAddon = load();
