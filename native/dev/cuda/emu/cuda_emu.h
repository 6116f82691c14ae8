// A CUDA emulator for checking the engine's kernels on a machine without a GPU (README.md).
// Each launch runs its blocks one after another; a block's CUDA threads are fibers on one host
// thread, switched only where a GPU thread could observe another: __syncthreads (a barrier of
// the block), warp shuffles and mma.sync (barriers of the warp, exchanging through memory). So
// a thread runs alone from one barrier to the next, in a turn order that can be changed
// (EMU_REVERSE, EMU_SHUFFLE) to expose a missing barrier. Shared memory is function statics
// (blocks never overlap) and a fresh NaN-filled buffer for the dynamic part; mma.sync m16n8k16
// is computed from the fragment layout the PTX manual gives. A barrier some threads never
// reach, and a full-mask shuffle in a warp with exited lanes, are reported rather than hung on.
// Only as right as that reading of the manual, but it runs every line of the kernels' index
// arithmetic, bounds, tiling, split-K and the model's orchestration. emulate.py rewrites the
// .cu sources for it (launches, dynamic shared memory, the mma asm).
#pragma once
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
// Aligned as CUDA declares them, so a sanitizer build (EMU_SANITIZE=1) reports a misaligned vector
// load, which faults on the GPU.
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) float4 { float x, y, z, w; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

// --- bf16 -----------------------------------------------------------------------------------
struct __nv_bfloat16 {
  uint16_t bits;
};
struct alignas(4) __nv_bfloat162 {  // as CUDA aligns it: kernels read one as a uint32_t
  __nv_bfloat16 x, y;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t)((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1);
  return {(uint16_t)(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 h) {
  uint32_t u = (uint32_t)h.bits << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)}; }

namespace emu {
// What cudaGetDeviceProperties reports as multiProcessorCount (EMU_SMS, default 4). The GEMM
// planner picks its tile and split-K from it, so a test sets it to reach each kernel variant
// with small shapes (the dev/cuda harnesses' cases assume an H100's 132).
inline int sm_count = std::getenv("EMU_SMS") ? std::atoi(std::getenv("EMU_SMS")) : 4;
}  // namespace emu

// --- runtime API ----------------------------------------------------------------------------
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2 };
typedef struct CUstream_st* cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
constexpr unsigned cudaStreamNonBlocking = 1;
struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount;
  size_t l2CacheSize;
};
inline const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated CUDA error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::strcpy(p->name, "CUDA emulator");
  p->major = 9, p->minor = 0, p->multiProcessorCount = emu::sm_count, p->l2CacheSize = 1 << 20;
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t n) {
  if (posix_memalign(p, 256, n ? n : 1)) return cudaErrorMemoryAllocation;  // cudaMalloc's alignment
  std::memset(*p, 0xFF, n);  // NaN floats: reading memory nothing wrote shows
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMalloc(T** p, size_t n) { return cudaMalloc((void**)p, n); }
inline cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemGetInfo(size_t* f, size_t* t) { *f = (size_t)8 << 30, *t = (size_t)16 << 30; return cudaSuccess; }
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) { std::memmove(d, s, n); return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) { return cudaMemcpy(d, s, n, k); }
inline cudaError_t cudaMemset(void* d, int v, size_t n) { std::memset(d, v, n); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t = nullptr) { return cudaMemset(d, v, n); }
inline cudaError_t cudaMemset2DAsync(void* d, size_t pitch, int v, size_t w, size_t h, cudaStream_t = nullptr) {
  for (size_t r = 0; r < h; r++) std::memset((char*)d + r * pitch, v, w);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy2DAsync(void* d, size_t dp, const void* s, size_t sp, size_t w, size_t h, cudaMemcpyKind,
                                     cudaStream_t = nullptr) {
  for (size_t r = 0; r < h; r++) std::memmove((char*)d + r * dp, (const char*)s + r * sp, w);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { *s = nullptr; return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
namespace emu {
// Dynamic shared memory a kernel may take above the default 48 KB, as cudaFuncSetAttribute set
// it: a launch asking for more without it fails on the GPU, and here.
inline std::vector<std::pair<const void*, int>> smem_opt_in;
inline int smem_allowed(const void* kernel) {
  for (auto& [k, bytes] : smem_opt_in)
    if (k == kernel) return bytes;
  return 48 * 1024;
}
}  // namespace emu
template <typename K>
cudaError_t cudaFuncSetAttribute(K kernel, cudaFuncAttribute, int bytes) {
  if (bytes > 227 * 1024) return cudaErrorInvalidValue;  // sm_90's most per block
  for (auto& e : emu::smem_opt_in)
    if (e.first == reinterpret_cast<const void*>(kernel)) return e.second = bytes, cudaSuccess;
  emu::smem_opt_in.push_back({reinterpret_cast<const void*>(kernel), bytes});
  return cudaSuccess;
}
// Events exist for the dev/cuda harnesses' timing code, which emulate.py cuts before it runs.
typedef struct CUevent_st* cudaEvent_t;
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = nullptr; return cudaSuccess; }
inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t = nullptr) { return cudaSuccess; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) { *ms = 0; return cudaSuccess; }

// --- execution ------------------------------------------------------------------------------
inline dim3 gridDim, blockDim, blockIdx, threadIdx;

namespace emu {

// The order a block's threads take turns in (each runs until it waits at a barrier or ends).
// Forward by default; EMU_REVERSE=1 runs them last to first, so a missing barrier that the
// forward order happens to satisfy (thread 0 writes, thread 31 reads) shows; EMU_SHUFFLE=<seed>
// in a random order, a different one for every block.
inline bool reverse_order = std::getenv("EMU_REVERSE") != nullptr;
inline const char* shuffle_seed = std::getenv("EMU_SHUFFLE");
// EMU_PROFILE=1 prints, at exit, the host time each kernel took.
inline const bool profile = std::getenv("EMU_PROFILE") != nullptr;

// A fiber: its own stack and saved registers. On x86-64 the switch saves only the callee-saved
// registers (a few ns); elsewhere ucontext (which also saves the signal mask, a system call;
// -DEMU_UCONTEXT picks it on x86-64 too, to test that path).
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
#define EMU_X86_SWITCH 1
#else
#define EMU_X86_SWITCH 0
#endif
struct Context {
#if EMU_X86_SWITCH
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

#if EMU_X86_SWITCH
extern "C" void emu_switch(void** save_sp, void* load_sp);
// Weak: every translation unit that includes this header emits it, the linker keeps one.
asm(R"(
  .text
  .weak emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
#endif

struct Barrier {
  unsigned arrived = 0, generation = 0;
};
// What the lanes exchange, twice over: an exchange writes the half named by the parity of the
// barrier it then waits at and reads it after, so one barrier per exchange is enough (a lane can
// only reach the next write to the same half after everyone has passed the barrier between).
struct Warp {
  Barrier bar;
  uint64_t buf[2][32];
  uint32_t a[2][32][4], b[2][32][2];  // mma.sync's A and B fragments of the 32 lanes
  // A and B as floats, unpacked by the first lane past the barrier (the generation it opened);
  // the next mma's cannot start before the last lane has used them.
  float fa[16][16], fb[16][8];
  unsigned unpacked = ~0u;
};
// Stacks are mapped, not allocated: pages a fiber never touches cost nothing, and the page below
// each stack is a guard, so an overflow faults instead of corrupting the neighbour's frames.
constexpr size_t kStack = 256 << 10;
struct Stack {
  char* base = nullptr;  // lowest usable byte
  Stack() {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void* p = mmap(nullptr, kStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("emulator: no memory for a fiber stack");
    mprotect(p, page, PROT_NONE);
    base = static_cast<char*>(p) + page;
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
};
struct Fiber {
  Context ctx;
  std::unique_ptr<Stack> stack = std::make_unique<Stack>();
  dim3 idx;                     // its threadIdx
  unsigned next = 0, prev = 0;  // the ring of unfinished fibers, in scheduling order
  bool done = false;
};
struct Block {
  Barrier bar;
  std::vector<Warp> warps;
  std::vector<Fiber> fibers;  // kept from launch to launch, with their stacks
  std::vector<unsigned> live_in_warp;
  std::vector<unsigned> order;  // this block's turn order
  unsigned live = 0, current = 0;
  // Resumes since anything changed (a thread arrived at a barrier or finished) in which the
  // resumed thread found its barrier still closed. Once every live thread has had one, nothing
  // can ever change again: a deadlock.
  unsigned stalled = 0;
  bool deadlocked = false;
  bool abandoned = false;  // a deadlock left frames on the stacks (AddressSanitizer's shadow too)
  Context scheduler;  // the host stack that runs the block
  void (*body)(void*) = nullptr;
  void* body_arg = nullptr;
  std::string fault;  // the first misuse a thread reported; the launch throws it when the block ends
};
inline Block the_block;
inline Block* block = nullptr;  // set while a launch runs
inline std::unique_ptr<char[]> dynamic_smem;  // allocated per launch, exactly as large as asked: a
                                              // sanitizer build sees an overrun
inline unsigned tid = 0;

// Fibers cannot throw (there is no frame to unwind into); they report, and keep going.
inline void report(const std::string& what) {
  if (block->fault.empty()) block->fault = what + " (thread " + std::to_string(tid) + ")";
}

inline void jump(Context& save, Context& load) {
#if EMU_X86_SWITCH
  emu_switch(&save.sp, load.sp);
#else
  swapcontext(&save.uc, &load.uc);
#endif
}

// Fibers hand the host thread straight to the next one in the ring, with no trip through the
// scheduler: a barrier costs one switch per thread.
inline void enter(unsigned t) {
  block->current = tid = t;
  threadIdx = block->fibers[t].idx;
}
inline void yield() {
  Fiber& me = block->fibers[block->current];
  enter(me.next);
  jump(me.ctx, block->fibers[me.next].ctx);
}

// Waits at `b` until `live()` threads have arrived; threads that have exited count as arrived
// (as on the GPU, where an exited warp no longer holds a barrier back).
template <typename Live>
inline void wait(Barrier& b, Live live) {
  Block& blk = *block;
  const unsigned gen = b.generation;
  b.arrived++;
  blk.stalled = 0;
  for (bool resumed = false;; resumed = true) {
    if (b.generation != gen) return;  // opened by the last to arrive
    if (b.arrived >= live()) {        // this thread is the last, or the missing ones exited
      b.arrived = 0;
      b.generation++;
      return;
    }
    if (resumed && ++blk.stalled >= blk.live) {
      blk.deadlocked = true;
      jump(blk.fibers[blk.current].ctx, blk.scheduler);  // never resumed
    }
    yield();
  }
}
// A warp-wide operation with the full mask: every lane of the warp must take part.
inline void warp_wait(const char* op) {
  const unsigned w = tid / 32;
  if (block->live_in_warp[w] != 32) report(std::string(op) + " with the full mask in a warp whose other lanes exited");
  wait(block->warps[w].bar, [w] { return block->live_in_warp[w]; });
}

extern "C" inline void fiber_entry_c() {
  Block& b = *block;
  b.body(b.body_arg);
  Fiber& f = b.fibers[b.current];
  f.done = true;
  b.live--;
  b.live_in_warp[b.current / 32]--;
  b.stalled = 0;
  b.fibers[f.prev].next = f.next, b.fibers[f.next].prev = f.prev;
  if (b.live == 0) {
    jump(f.ctx, b.scheduler);
  } else {
    enter(f.next);
    jump(f.ctx, b.fibers[f.next].ctx);
  }
  std::abort();  // a finished fiber is never resumed
}

#if EMU_X86_SWITCH
// A fresh stack whose first switch "returns" into fiber_entry_c with a 16-byte aligned frame.
inline void* prepare_stack(Stack& stack) {
  uintptr_t top = reinterpret_cast<uintptr_t>(stack.base + kStack) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                                       // fake return address of fiber_entry_c
  *--sp = reinterpret_cast<void*>(&fiber_entry_c);       // emu_switch's ret lands here
  for (int i = 0; i < 6; i++) *--sp = nullptr;           // rbp rbx r12 r13 r14 r15
  return sp;
}
#endif

// Runs one block to the end: each thread in turn runs until it waits or ends.
inline void run_block(Block& b, unsigned n, dim3 bd, const char* kernel) {
  b.live = n;
  b.live_in_warp.assign(n / 32, 32);
  b.stalled = 0;
#if defined(__SANITIZE_ADDRESS__)
  if (b.abandoned)
    for (auto& f : b.fibers) ASAN_UNPOISON_MEMORY_REGION(f.stack->base, kStack);
#endif
  b.abandoned = b.deadlocked = false;
  b.bar = Barrier{};
  for (auto& w : b.warps) w.bar = Barrier{}, w.unpacked = ~0u;
  std::vector<unsigned>& order = b.order;
  order.resize(n);
  for (unsigned t = 0; t < n; t++) order[t] = reverse_order ? n - 1 - t : t;
  if (shuffle_seed) {
    const uint64_t block_id = ((uint64_t)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    std::mt19937_64 rng(std::strtoull(shuffle_seed, nullptr, 10) * 0x9E3779B97F4A7C15ull + block_id);
    std::shuffle(order.begin(), order.end(), rng);
  }
  for (unsigned i = 0; i < n; i++) {
    Fiber& f = b.fibers[order[i]];
    f.next = order[(i + 1) % n], f.prev = order[(i + n - 1) % n];
  }
  for (unsigned t = 0; t < n; t++) {
    Fiber& f = b.fibers[t];
    f.done = false;
    f.idx = dim3(t % bd.x, t / bd.x % bd.y, t / (bd.x * bd.y));
#if EMU_X86_SWITCH
    f.ctx.sp = prepare_stack(*f.stack);
#else
    getcontext(&f.ctx.uc);
    f.ctx.uc.uc_stack.ss_sp = f.stack->base;
    f.ctx.uc.uc_stack.ss_size = kStack;
    f.ctx.uc.uc_link = nullptr;
    makecontext(&f.ctx.uc, fiber_entry_c, 0);
#endif
  }
  const unsigned first = order[0];
  enter(first);
  jump(b.scheduler, b.fibers[first].ctx);  // back when every thread finished, or none can go on
  b.abandoned = b.deadlocked;
  if (b.deadlocked)
    throw std::runtime_error(std::string("emulator: ") + kernel + " block (" + std::to_string(blockIdx.x) + "," +
                             std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) +
                             ") deadlocked: some threads wait at a barrier the others never reach");
}

struct Profile {
  struct Row {
    long launches = 0, blocks = 0;
    unsigned max_z = 0;  // split-K shows as grid.z > 1
    double seconds = 0;
  };
  std::vector<std::pair<std::string, Row>> rows;
  Row& at(const char* name) {
    for (auto& r : rows)
      if (r.first == name) return r.second;
    rows.push_back({name, Row{}});
    return rows.back().second;
  }
  ~Profile() {
    if (rows.empty()) return;
    double total = 0;
    for (auto& r : rows) total += r.second.seconds;
    std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
    std::fprintf(stderr, "emulator profile: %.1f s in kernels\n", total);
    for (auto& [name, r] : rows)
      std::fprintf(stderr, "  %8.2f s %7ld launches %9ld blocks  grid.z <= %-3u %s\n", r.seconds, r.launches, r.blocks,
                   r.max_z, name.c_str());
  }
};
inline Profile profile_rows;

}  // namespace emu

inline void __syncthreads() { emu::wait(emu::block->bar, [] { return emu::block->live; }); }

template <typename T>
T emu_exchange(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
  emu::Warp& w = emu::block->warps[emu::tid / 32];
  const unsigned h = w.bar.generation & 1;
  std::memcpy(&w.buf[h][emu::tid % 32], &v, sizeof(T));
  emu::warp_wait("a shuffle");
  T r;
  std::memcpy(&r, &w.buf[h][src & 31], sizeof(T));
  return r;
}
template <typename T>
T __shfl_sync(unsigned, T v, int src) { return emu_exchange(v, src); }
template <typename T>
T __shfl_xor_sync(unsigned, T v, int mask) { return emu_exchange(v, (int)(emu::tid % 32) ^ mask); }

inline float atomicAdd(float* p, float v) { float old = *p; *p = old + v; return old; }
inline double atomicAdd(double* p, double v) { double old = *p; *p = old + v; return old; }
// The fast intrinsics as the GPU computes them, up to the last bits: __expf is ex2.approx of x
// times log2(e) rounded to float, so its error grows with |x| (about 2^-24 |x| relative), which
// std::exp would hide. ex2.approx's and rsqrt.approx's own 2-ulp errors are not modelled.
inline float __expf(float x) { return std::exp2(x * 1.44269504088896341f); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
using std::fmaxf;

template <typename T>
T* emu_smem() { return reinterpret_cast<T*>(emu::dynamic_smem.get()); }

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, D = A B + C for the warp, from the PTX
// ISA's fragment layouts: groupID = lane / 4, tig = lane % 4;
//   A (16x16, row): a0,a1 (g, 2t..2t+1), a2,a3 (g+8, ...), a4,a5 (g, 2t+8..), a6,a7 (g+8, 2t+8..)
//   B (16x8, col):  b0,b1 (k 2t..2t+1, n g), b2,b3 (k 2t+8.., n g)
//   C (16x8):       c0,c1 (g, 2t..2t+1), c2,c3 (g+8, 2t..2t+1)
// The products of bf16 values are exact in fp32; the sum runs in k order, in fp32 (the tensor
// core's internal order and rounding are not specified, so results can differ in the last bits).
inline void emu_mma_bf16(float* c, const uint32_t* a, const uint32_t* b) {
  emu::Warp& w = emu::block->warps[emu::tid / 32];
  const int lane = emu::tid % 32;
  const unsigned h = w.bar.generation & 1;
  std::memcpy(w.a[h][lane], a, 16), std::memcpy(w.b[h][lane], b, 8);
  emu::warp_wait("mma.sync");
  if (w.unpacked != w.bar.generation) {
    auto half = [](uint32_t r, int hi) { return __bfloat162float({(uint16_t)(hi ? r >> 16 : r & 0xFFFF)}); };
    for (int l = 0; l < 32; l++) {
      const int g = l / 4, t = l % 4;
      for (int reg = 0; reg < 4; reg++)
        for (int hi = 0; hi < 2; hi++)
          w.fa[g + (reg & 1) * 8][2 * t + hi + (reg & 2) * 4] = half(w.a[h][l][reg], hi);
      for (int reg = 0; reg < 2; reg++)
        for (int hi = 0; hi < 2; hi++) w.fb[2 * t + hi + reg * 8][g] = half(w.b[h][l][reg], hi);
    }
    w.unpacked = w.bar.generation;
  }
  const int g = lane / 4, t = lane % 4;
  for (int e = 0; e < 4; e++) {
    const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
    float acc = c[e];  // each lane's C and D fragments are its own
    for (int k = 0; k < 16; k++) acc += w.fa[row][k] * w.fb[k][col];
    c[e] = acc;
  }
}

// The kernel's name with its template arguments, from the compiler's spelling of K in
// kernel_name's signature ("... [with auto K = &temper::cuda::{anonymous}::gemm_mma<64, ...>]").
inline std::string tidy_kernel_name(std::string s) {
  const size_t at = s.find("K = ");
  if (at == std::string::npos) return s;
  s = s.substr(at + 4, s.rfind(']') - at - 4);
  if (!s.empty() && s[0] == '&') s.erase(0, 1);
  for (const char* ns : {"temper::cuda::", "{anonymous}::", "(anonymous namespace)::"})
    for (size_t p; (p = s.find(ns)) != std::string::npos;) s.erase(p, std::strlen(ns));
  return s;
}
template <auto K>
const char* kernel_name() {
  static const std::string name = tidy_kernel_name(__PRETTY_FUNCTION__);
  return name.c_str();
}

// kernel<<<grid, block, smem, stream>>>(args...), as emulate.py writes it: emu_launch<kernel>(...).
template <auto K, typename... Args>
void emu_launch(dim3 grid, dim3 block, size_t smem, cudaStream_t, Args... args) {
  const char* name = kernel_name<K>();
  const unsigned n = block.x * block.y * block.z;
  if (n == 0 || n > 1024 || n % 32)
    throw std::runtime_error(std::string("emulator: ") + name + " launched with a block of " + std::to_string(n) +
                             " threads (the emulator takes whole warps, at most 1024)");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error(std::string("emulator: ") + name + " launched with an invalid grid");
  if (smem > (size_t)emu::smem_allowed(reinterpret_cast<const void*>(K)))
    throw std::runtime_error(std::string("emulator: ") + name + " asks for " + std::to_string(smem) +
                             " bytes of dynamic shared memory, more than the 48 KB default or what "
                             "cudaFuncSetAttribute allowed it");
  if (emu::block) throw std::runtime_error("emulator: a launch from inside a kernel");
  const auto t0 = std::chrono::steady_clock::now();
  gridDim = grid, blockDim = block;
  emu::dynamic_smem.reset(new char[smem ? smem : 1]);
  emu::Block& b = emu::the_block;
  if (b.fibers.size() < n) b.fibers.resize(n);
  b.warps.resize(n / 32);
  b.fault.clear();
  auto body = [&] { K(args...); };
  b.body = [](void* p) { (*static_cast<decltype(body)*>(p))(); };
  b.body_arg = &body;
  emu::block = &b;
  try {
    for (unsigned z = 0; z < grid.z; z++)
      for (unsigned y = 0; y < grid.y; y++)
        for (unsigned x = 0; x < grid.x; x++) {
          blockIdx = dim3(x, y, z);
          // Each block's shared memory starts undefined: NaN floats, so a read before a write shows.
          std::memset(emu::dynamic_smem.get(), 0xFF, smem);
          emu::run_block(b, n, block, name);
          if (!b.fault.empty())
            throw std::runtime_error(std::string("emulator: ") + name + " block (" + std::to_string(x) + "," +
                                     std::to_string(y) + "," + std::to_string(z) + "): " + b.fault);
        }
  } catch (...) {
    emu::block = nullptr;
    throw;
  }
  emu::block = nullptr;
  if (emu::profile) {
    auto& r = emu::profile_rows.at(name);
    r.launches++, r.blocks += (long)grid.x * grid.y * grid.z, r.max_z = std::max(r.max_z, grid.z);
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
}
template <auto K, typename... Args>
void emu_launch3(dim3 grid, dim3 block, size_t smem, Args... args) {
  emu_launch<K>(grid, block, smem, nullptr, args...);
}
template <auto K, typename... Args>
void emu_launch2(dim3 grid, dim3 block, Args... args) {
  emu_launch<K>(grid, block, 0, nullptr, args...);
}
