// Files of a learner checkpoint that more than one process reads by name: the learner writes
// them, the generator serves from them, `temper export` turns them into Hugging Face
// directories, and all must agree on what they are called. (The
// tokenizer's files are named by @temper/tokenizers, which reads them.)

/** The base weights (safetensors): what the learner streams to generators and commits. */
export const WEIGHTS_FILE = 'model.safetensors';
/** AdamW moments, in checkpoints a run resumes from (the engine writes and reads it). */
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Where a stage stood when it saved (step, policy version, data position): resumable checkpoints only. */
export const RUN_STATE_FILE = 'temper-run-state.json';
/** Adapters an SFT stage kept unmerged, as a PEFT adapter directory over the checkpoint's base weights. */
export const ADAPTER_DIR = 'adapter';
/** The adapters' weights inside ADAPTER_DIR (PEFT's name). */
export const ADAPTER_WEIGHTS_FILE = `${ADAPTER_DIR}/adapter_model.safetensors`;
/**
 * The manifest label of a checkpoint that holds adapters alone (a policy version of a GRPO
 * stage that trains adapters): the id of the checkpoint whose base weights they go on.
 */
export const ADAPTER_BASE_LABEL = 'adapter_base';
