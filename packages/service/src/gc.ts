// Garbage collection tuned for a process whose large allocations are buffers streamed through
// it rather than JavaScript objects: the store, `temper ckpt push|pull`, and the learner and
// generator (model weights, checkpoints, streamed policies).
//
// V8 counts ArrayBuffer memory against the old generation's allocation limit, which it sets
// from the live JavaScript heap: with the store's small heap (~15 MB) a full collection starts
// after every few tens of MB of buffers. grpc-js and node:http2 allocate about two buffers'
// worth per byte streamed (socket reads, message reassembly, framing), so a put and a get of
// 1 GB ran ~90 full collections in the store, about 0.7 of its 1.9 CPU-seconds per GB served.
// Letting the limit grow to five times the live heap leaves ~6 (peak memory +40 MB); the limit
// stays capped at half the way to the heap's maximum, as always. A client pushing and pulling
// 1 GB spends the same way: 3.2 -> 2.1 CPU-seconds per GB put, 4.3 -> 2.4 per GB got.
import { setFlagsFromString } from 'node:v8';

const HEAP_GROWING_PERCENT = 400;

/**
 * Call once, in a process that mostly streams checkpoints (it changes the whole process's V8
 * settings, so a library must not call it on its host's behalf).
 */
export function spaceOutFullCollections(): void {
  // Read by V8 at every limit computation, so it takes effect after startup.
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
