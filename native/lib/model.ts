// The engine's Model: Hugging Face directories in and out, and the training / sampling calls.
// Everything that takes time returns a Promise and runs on a worker thread.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { addon, Dtype, NativeAdapterSpec, NativeDeviceOptions, NativeModel, Precision } from './addon';
import { engineConfig, HfConfig } from './config';
import { clearWeights, hfConfigFile, shardWeights, WEIGHTS_FILE } from './hf-files';

/** Where the model computes. */
export interface DeviceOptions {
  /** 'cuda' runs every call on a GPU (the build must have the CUDA backend and a device must be present). */
  device?: 'cpu' | 'cuda';
  /** Which CUDA device (default 0). */
  deviceIndex?: number;
  /**
   * What the base matrices' products read. CUDA: 'bf16' (default; fp32 master weights and AdamW
   * state) or 'fp32' (for checking). CPU: 'fp32' (default) or 'bf16' (bf16 copies of the base
   * matrices, widened inside each product: half the bytes a decode step reads).
   */
  precision?: Precision;
  /** CUDA only: completions in flight during generate; more wait and join as others finish (default: all that fit, up to 1024). */
  maxSlots?: number;
  /**
   * CPU, fp32 only: every result for a sequence (log-probs, entropy, the gradient it contributes,
   * its sampled tokens) is the same bits whatever else is in the batch: products in fixed tiles of
   * rows, attention and norms per row in a fixed order, so a sequence alone and beside others
   * agree exactly, and decode through the KV cache does the training pass's arithmetic.
   * Slower (see the README). Default false.
   */
  batchInvariant?: boolean;
}

/** How the training pass (logprobs, then backward) trades memory for time. */
export interface TrainingOptions {
  /**
   * Keep only each layer's input during logprobs and run the layer's forward again in backward
   * (gradient checkpointing per layer): activation memory of one layer instead of all, for about
   * one more forward pass. Default false.
   */
  recompute?: boolean;
  /** Token rows whose logits the head computes at once (default 0: as many as 128 MiB of logits hold). */
  headChunkRows?: number;
}

/** A model that will only run forward (a generator's policy, a KL reference). */
export interface FreezeOption {
  /**
   * Frozen from the start, as freeze() right after: backward is refused, and in bf16 precision
   * on the CPU the projections are made without fp32 masters, so making or loading the model
   * never holds both copies (the peak is the bf16 model's, not fp32 + bf16). Default false.
   */
  frozen?: boolean;
}

export interface LoadOptions extends DeviceOptions, TrainingOptions, FreezeOption {
  /** Threads for this model's work (default: the machine's available parallelism). */
  threads?: number;
  /** Also restore AdamW state from optimizer.safetensors (written by save with optimizer: true). */
  optimizer?: boolean;
}

export interface CreateOptions extends DeviceOptions, TrainingOptions, FreezeOption {
  seed?: number;
  threads?: number;
}

export interface SaveOptions {
  dtype?: Dtype;
  /** Also write optimizer.safetensors so a run resumes exactly. */
  optimizer?: boolean;
  /** What exportWeights gave (in the same dtype) a moment ago: written as the weights file, not serialized again. */
  weights?: Uint8Array;
  /** Above this many bytes of tensors, shards (model-00001-of-0000N.safetensors) with model.safetensors.index.json. */
  maxShardBytes?: number;
}

export interface SaveAdaptersOptions {
  dtype?: Dtype;
  /** adapter_config.json's base_model_name_or_path: the model the adapter goes on (a hub name or a path). */
  baseModel?: string;
}

export interface BatchShape {
  batch: number;
  seqLen: number;
}

export interface LogprobsOptions extends BatchShape {
  /** Real length of each right-padded row; positions from lengths[b]-1 on get log-prob 0. */
  lengths?: Int32Array | number[];
  entropy?: boolean;
  /** false when no backward follows (a reference model): the activations are released at once. */
  grad?: boolean;
}

export interface LogprobsResult {
  /** [batch, seqLen-1]: log p(tokens[b, t+1] | tokens[b, ..t]). */
  logprobs: Float32Array;
  /** [batch, seqLen-1]: entropy of the next-token distribution at t (when asked). */
  entropy?: Float32Array;
}

export interface StepOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this before the step (torch clip_grad_norm_). */
  maxGradNorm?: number;
}

export interface GenerateOptions {
  prompts: Int32Array[];
  maxNewTokens: number;
  /** 0 is greedy. */
  temperature?: number;
  topP?: number;
  /** 0 keeps the whole vocabulary. */
  topK?: number;
  stopTokens?: Int32Array | number[];
  seed?: number;
  /**
   * One seed per prompt (instead of seed): prompt i samples as it would alone in a call with
   * seed seeds[i], whatever else is in the batch and wherever it sits.
   */
  seeds?: number[];
  /** Completions per prompt. */
  n?: number;
}

export interface Completion {
  /** Index of the prompt and of the sample for that prompt. */
  prompt: number;
  sample: number;
  /** New tokens; a stop token that ended the completion is included. */
  tokens: Int32Array;
  /** log p(token) under the model itself (temperature 1, no truncation): what logprobs() gives. */
  logprobs: Float32Array;
  finishReason: 'stop' | 'length';
}

export type AdapterTarget = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';

export interface AdapterSpec {
  r: number;
  alpha: number;
  targetModules: AdapterTarget[] | string[];
  useRslora?: boolean;
  useDora?: boolean;
  /** Seed for A's initialisation. */
  seed?: number;
}

const ALL_TARGETS: AdapterTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The safetensors files of a model directory: the shards named by the index, or model.safetensors. */
function weightFiles(dir: string): string[] {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    const j = readJson(index) as { weight_map?: unknown };
    if (typeof j?.weight_map !== 'object' || j.weight_map === null) throw new Error(`${index}: weight_map is missing`);
    const files = new Set<string>();
    for (const [name, file] of Object.entries(j.weight_map as Record<string, unknown>)) {
      if (typeof file !== 'string' || file !== path.basename(file) || !file.endsWith('.safetensors')) {
        throw new Error(`${index}: weight_map["${name}"] must name a .safetensors file in the same directory`);
      }
      files.add(file);
    }
    if (files.size === 0) throw new Error(`${index}: weight_map is empty`);
    return [...files].sort().map((f) => path.join(dir, f));
  }
  const single = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(single)) throw new Error(`${dir} has neither model.safetensors nor model.safetensors.index.json`);
  return [single];
}

function threadCount(t: number | undefined): number {
  const n = t ?? os.availableParallelism();
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new RangeError(`threads must be an integer in [1, 256] (got ${t})`);
  return n;
}

function frozenOption(o: FreezeOption): boolean {
  const frozen = o.frozen ?? false;
  if (typeof frozen !== 'boolean') throw new TypeError(`frozen must be a boolean (got ${String(o.frozen)})`);
  return frozen;
}

/** The constructor's device argument; undefined for the CPU. Errors name what is missing. */
function deviceOptions(o: DeviceOptions): NativeDeviceOptions | undefined {
  const device = o.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new Error(`device "${String(device)}" is not one of "cpu", "cuda"`);
  const batchInvariant = o.batchInvariant ?? false;
  if (typeof batchInvariant !== 'boolean') throw new TypeError(`batchInvariant must be a boolean (got ${String(o.batchInvariant)})`);
  if (device === 'cpu') {
    for (const k of ['deviceIndex', 'maxSlots'] as const) {
      if (o[k] !== undefined) throw new Error(`${k} applies to device 'cuda' only`);
    }
    const precision = o.precision ?? 'fp32';
    if (precision !== 'bf16' && precision !== 'fp32') throw new RangeError(`precision must be "bf16" or "fp32" (got ${String(o.precision)})`);
    if (batchInvariant && precision !== 'fp32') {
      throw new RangeError('batchInvariant computes in fp32 only: leave precision at "fp32" (got "bf16")');
    }
    if (precision === 'fp32' && !batchInvariant) return undefined;
    return { device: 'cpu', deviceIndex: 0, precision, maxSlots: 0, batchInvariant };
  }
  if (batchInvariant) throw new RangeError("batchInvariant is a CPU mode: device 'cuda' has no batch-invariant kernels");
  const index = o.deviceIndex ?? 0;
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`deviceIndex must be a non-negative integer (got ${o.deviceIndex})`);
  const precision = o.precision ?? 'bf16';
  if (precision !== 'bf16' && precision !== 'fp32') throw new RangeError(`precision must be "bf16" or "fp32" (got ${String(o.precision)})`);
  const maxSlots = o.maxSlots ?? 0;
  if (!Number.isInteger(maxSlots) || maxSlots < 0) throw new RangeError(`maxSlots must be a non-negative integer (got ${o.maxSlots})`);
  if (!addon.buildInfo().cudaCompiled) {
    throw new Error(
      "device 'cuda' requested but this build of the engine has no CUDA backend (built without nvcc or with TEMPER_CUDA=off)",
    );
  }
  const devices = addon.cudaDevices();
  if (devices.count === 0) throw new Error(`device 'cuda' requested but no CUDA device is usable: ${devices.reason ?? 'none found'}`);
  if (index >= devices.count) {
    throw new RangeError(`device 'cuda' requested with deviceIndex ${index} but ${devices.count} CUDA device(s) are present`);
  }
  return { device: 'cuda', deviceIndex: index, precision, maxSlots };
}

function int32(v: Int32Array | number[], name: string): Int32Array {
  if (v instanceof Int32Array) return v;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= -2147483648 && x <= 2147483647)) {
    throw new TypeError(`${name} must be an Int32Array or an array of integers`);
  }
  return Int32Array.from(v);
}

function peftSpec(file: string): NativeAdapterSpec {
  const c = readJson(file) as Record<string, unknown>;
  const bad = (field: string, why: string): never => {
    throw new Error(`${file}: ${field} ${why}`);
  };
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') bad('peft_type', `must be "LORA" (got ${JSON.stringify(c.peft_type)})`);
  if (c.bias !== undefined && c.bias !== 'none') bad('bias', 'other than "none" is not supported');
  const empty = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0);
  for (const field of ['layers_to_transform', 'rank_pattern', 'alpha_pattern', 'modules_to_save']) {
    if (!empty(c[field])) bad(field, 'is not supported (adapters apply to every layer with one r and alpha)');
  }
  if (!Number.isInteger(c.r) || (c.r as number) < 1) bad('r', 'must be a positive integer');
  const alpha = c.lora_alpha ?? c.r;
  if (typeof alpha !== 'number' || !(alpha > 0)) bad('lora_alpha', 'must be a positive number');
  let targets = c.target_modules;
  if (targets === 'all-linear') targets = ALL_TARGETS;
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string')) bad('target_modules', 'must be a list of module names');
  return {
    r: c.r as number,
    alpha: alpha as number,
    useRslora: c.use_rslora === true,
    useDora: c.use_dora === true,
    targetModules: targets as string[],
  };
}

export class Model {
  private adapter: NativeAdapterSpec | null = null;
  private training: Required<TrainingOptions> = { headChunkRows: 0, recompute: false };
  // Calls on one model run one after another; queueing them here rather than on the engine's
  // lock keeps waiting calls from occupying libuv's worker threads (which fs and dns share).
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly native: NativeModel,
    /** The Hugging Face config this model was made from. */
    readonly config: HfConfig,
  ) {}

  private serial<T>(call: () => Promise<T>): Promise<T> {
    const result = this.tail.then(call, call);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Opens a Hugging Face model directory: config.json and model.safetensors or its shards. */
  static async load(dir: string, options: LoadOptions = {}): Promise<Model> {
    const device = deviceOptions(options);
    const frozen = frozenOption(options);
    if (frozen && options.optimizer) throw new Error('optimizer: a frozen model trains nothing, so it takes no optimizer state (drop one of frozen, optimizer)');
    const config = readJson(path.join(dir, 'config.json')) as HfConfig;
    const native = new addon.NativeModel(engineConfig(config), threadCount(options.threads), device, frozen);
    await native.loadWeights(weightFiles(dir));
    if (options.optimizer) await native.loadOptimizer(path.join(dir, 'optimizer.safetensors'));
    const model = new Model(native, config);
    await model.setTrainingOptions(options);
    return model;
  }

  /** A freshly initialised model (normal(0, 0.02) weights, unit norms), the same for the same seed. */
  static async create(config: HfConfig, options: CreateOptions = {}): Promise<Model> {
    const device = deviceOptions(options);
    const native = new addon.NativeModel(engineConfig(config), threadCount(options.threads), device, frozenOption(options));
    await native.initRandom(options.seed ?? 0);
    const model = new Model(native, { ...config });
    await model.setTrainingOptions(options);
    return model;
  }

  /**
   * Writes a directory transformers loads as it is: config.json (its architecture and every field
   * the engine resolved) and model.safetensors (F32 by default) or its shards, and
   * optimizer.safetensors when asked. With adapters, the base weights are written as they are;
   * saveAdapters writes the adapters.
   */
  async save(dir: string, options: SaveOptions = {}): Promise<void> {
    fs.mkdirSync(dir, { recursive: true });
    const dtype = options.dtype ?? 'F32';
    clearWeights(dir);
    if (options.weights) fs.writeFileSync(path.join(dir, WEIGHTS_FILE), options.weights);
    else await this.serial(() => this.native.save(path.join(dir, WEIGHTS_FILE), dtype));
    if (options.maxShardBytes !== undefined) shardWeights(dir, options.maxShardBytes);
    if (options.optimizer) {
      await this.serial(() => this.native.saveOptimizer(path.join(dir, 'optimizer.safetensors')));
    }
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfigFile(this.config, dtype), null, 2));
  }

  /** Writes the AdamW state (moments and step count) as dir/optimizer.safetensors. */
  async saveOptimizer(dir: string): Promise<void> {
    fs.mkdirSync(dir, { recursive: true });
    await this.serial(() => this.native.saveOptimizer(path.join(dir, 'optimizer.safetensors')));
  }

  /** Restores the AdamW state for the tensors that train now (load adapters first when they train). */
  async loadOptimizer(dir: string): Promise<void> {
    await this.serial(() => this.native.loadOptimizer(path.join(dir, 'optimizer.safetensors')));
  }

  /** Logits [batch, seqLen, vocab]. */
  async forward(tokens: Int32Array, shape: BatchShape): Promise<Float32Array> {
    const t = tokens instanceof Int32Array ? tokens.slice() : tokens;
    return this.serial(() => this.native.forward(t, shape.batch, shape.seqLen));
  }

  /** Next-token log-probs; keeps the activations for one backward on this batch unless grad: false. */
  async logprobs(tokens: Int32Array, options: LogprobsOptions): Promise<LogprobsResult> {
    const lengths = options.lengths === undefined ? null : int32(options.lengths, 'lengths').slice();
    const t = tokens instanceof Int32Array ? tokens.slice() : tokens;
    return this.serial(() =>
      this.native.logprobs(t, options.batch, options.seqLen, lengths, options.entropy ?? false, options.grad ?? true),
    );
  }

  /** Adds d(Σ dlogprob · logprob)/dθ to the gradients of the trainable tensors (after logprobs). */
  async backward(dlogprob: Float32Array): Promise<void> {
    const d = dlogprob instanceof Float32Array ? dlogprob.slice() : dlogprob;
    return this.serial(() => this.native.backward(d));
  }

  /** Gradients by tensor name (Hugging Face names, or PEFT names when adapters train). */
  async grads(): Promise<Record<string, Float32Array>> {
    return this.serial(() => this.native.grads());
  }

  /** Current values: the trainable tensors, the base weights, or the adapters'. */
  async weights(kind: 'trainable' | 'base' | 'adapters' = 'trainable'): Promise<Record<string, Float32Array>> {
    return this.serial(() => this.native.weights(kind));
  }

  async zeroGrad(): Promise<void> {
    return this.serial(() => this.native.zeroGrad());
  }

  /** One AdamW step (torch semantics); resolves to the gradient norm before clipping. */
  async step(o: StepOptions): Promise<number> {
    return this.serial(() =>
      this.native.step(o.lr, o.beta1 ?? 0.9, o.beta2 ?? 0.999, o.eps ?? 1e-8, o.weightDecay ?? 0.01, o.maxGradNorm ?? 0),
    );
  }

  /** Samples completions, n per prompt, in prompt-major order. */
  async generate(o: GenerateOptions): Promise<Completion[]> {
    if (!Array.isArray(o.prompts)) throw new TypeError('prompts must be an array of Int32Array');
    const n = o.n ?? 1;
    const prompts = o.prompts.map((p) => (p instanceof Int32Array ? p.slice() : p));
    const stop = int32(o.stopTokens ?? [], 'stopTokens');
    const out = await this.serial(() =>
      this.native.generate(prompts, o.maxNewTokens, o.temperature ?? 1, o.topP ?? 1, o.topK ?? 0, stop, o.seed ?? 0, n, o.seeds),
    );
    return out.map((c, i) => ({ prompt: Math.floor(i / n), sample: i % n, ...c }));
  }

  /** New adapters (A random, B zero, DoRA magnitude = row norms); from now on only they train. */
  async addAdapters(spec: AdapterSpec): Promise<void> {
    const s: NativeAdapterSpec = {
      r: spec.r,
      alpha: spec.alpha,
      useRslora: spec.useRslora ?? false,
      useDora: spec.useDora ?? false,
      targetModules: [...spec.targetModules],
    };
    await this.serial(() => this.native.addAdapters(s, spec.seed ?? 0));
    this.adapter = s;
  }

  /** Opens a PEFT adapter directory (adapter_config.json + adapter_model.safetensors). */
  async loadAdapters(dir: string): Promise<void> {
    const s = peftSpec(path.join(dir, 'adapter_config.json'));
    await this.serial(() => this.native.loadAdapters(s, path.join(dir, 'adapter_model.safetensors')));
    this.adapter = s;
  }

  /** Writes the adapters as a PEFT adapter directory (adapter_config.json, adapter_model.safetensors). */
  async saveAdapters(dir: string, options: SaveAdaptersOptions = {}): Promise<void> {
    if (!this.adapter) throw new Error('the model has no adapters to save');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'adapter_model.safetensors');
    await this.serial(() => this.native.saveAdapters(file, options.dtype ?? 'F32'));
    const a = this.adapter;
    // LoraConfig's fields as peft writes them; the ones Temper does not use at their defaults.
    const config = {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: options.baseModel ?? null,
      r: a.r,
      lora_alpha: a.alpha,
      use_rslora: a.useRslora,
      use_dora: a.useDora,
      target_modules: a.targetModules,
      lora_dropout: 0,
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      layers_to_transform: null,
      layers_pattern: null,
      modules_to_save: null,
      rank_pattern: {},
      alpha_pattern: {},
      revision: null,
    };
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  }

  /** The adapters' tensors (PEFT names, F32) as safetensors bytes: all that differs between two policies on one base. */
  async exportAdapters(): Promise<Uint8Array> {
    return this.serial(() => this.native.exportAdapters());
  }

  /**
   * New values for the adapters this model has, from exportAdapters bytes of a model with the
   * same adapters (every tensor, same shapes; a refused import changes nothing). The bytes are
   * read where they are: leave them unchanged until this settles.
   */
  async importAdapters(bytes: Uint8Array): Promise<void> {
    return this.serial(() => this.native.importAdapters(bytes));
  }

  /**
   * Runs `work` on the base model alone (the adapters switched off, then on again): the frozen
   * base as a reference policy without a second model. Nothing else runs on the model meanwhile
   * unless `work` calls it.
   */
  async withoutAdapters<T>(work: () => Promise<T>): Promise<T> {
    if (!this.adapter) throw new Error('the model has no adapters to switch off');
    await this.serial(() => this.native.setAdaptersEnabled(false));
    try {
      return await work();
    } finally {
      await this.serial(() => this.native.setAdaptersEnabled(true));
    }
  }

  /** Changes the options given (the others stay); applies from the next logprobs call. */
  async setTrainingOptions(options: TrainingOptions): Promise<void> {
    const rows = options.headChunkRows ?? this.training.headChunkRows;
    if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`headChunkRows must be a non-negative integer (got ${rows})`);
    const recompute = options.recompute ?? this.training.recompute;
    if (typeof recompute !== 'boolean') throw new TypeError(`recompute must be a boolean (got ${String(recompute)})`);
    this.training = { headChunkRows: rows, recompute };
    await this.serial(() => this.native.setTrainingOptions(rows, recompute));
  }

  /** Folds the adapters into the base weights and removes them; the base trains again. */
  async mergeAdapters(): Promise<void> {
    await this.serial(() => this.native.mergeAdapters());
    this.adapter = null;
  }

  /**
   * Nothing of this model trains from now on (a KL reference, a policy that only samples):
   * backward is refused, and in bf16 precision on the CPU its projections keep only their bf16
   * copies (half their bytes), as a frozen base under adapters does. `frozen: true` on create or
   * load does this before the weights exist.
   */
  async freeze(): Promise<void> {
    await this.serial(() => this.native.freeze());
  }

  /** "cpu", "cpu (bf16)", or "cuda: <device name> (sm_XY, bf16|fp32)". */
  get device(): string {
    return this.native.device();
  }

  get hasAdapters(): boolean {
    return this.adapter !== null;
  }

  /** The adapters' shape (null without adapters): another model given it takes this one's exportAdapters bytes. */
  get adapterSpec(): AdapterSpec | null {
    const a = this.adapter;
    return a && { r: a.r, alpha: a.alpha, targetModules: [...a.targetModules], useRslora: a.useRslora, useDora: a.useDora };
  }

  /** The weights as safetensors bytes (adapters merged in unless merged: false), for importWeights elsewhere. */
  async exportWeights(options: { dtype?: Dtype; merged?: boolean } = {}): Promise<Uint8Array> {
    return this.serial(() => this.native.exportWeights(options.dtype ?? 'F32', options.merged ?? true));
  }

  /**
   * Replaces the base weights with exportWeights bytes from a model of the same config (adapters
   * stay). The bytes are read where they are: leave them unchanged until this settles.
   */
  async importWeights(bytes: Uint8Array): Promise<void> {
    return this.serial(() => this.native.importWeights(bytes));
  }
}
