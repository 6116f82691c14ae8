// A projection with optional bias and optional PEFT adapter.
//   LoRA:  y = W x + b + s B (A x)
//   DoRA:  y = (mag / ‖W + s B A‖_row) * (W x + s B (A x)) + b, the norm a constant in backward (as PEFT)
// The adapter's products read its fp32 tensors (they train); W is read through its weight().
#include "model/model.h"

namespace temper {

namespace {

Mat rows(const float* x, int64_t ld) { return {x, DType::F32, ld, false}; }
Mat cols(const float* x, int64_t ld) { return {x, DType::F32, ld, true}; }
const float* bias_of(const Linear& x) { return x.b.exists() ? x.b.data.f() : nullptr; }

}  // namespace

Buffer Linear::merged_weight(Backend& be, bool resident) const {
  Buffer w2(be, (size_t)(out * in) * 4, "a merged weight", resident);
  Buffer tmp;
  be.copy(w2.get(), fp32_values(be, w, tmp), w2.bytes());
  if (!lora) return w2;
  const Adapter& a = *lora;
  be.gemm(out, in, a.r, a.scale, rows(a.B.data.f(), a.r), rows(a.A.data.f(), in), true, w2.f(), in, nullptr, GemmMode::Exact);
  if (a.dora) {
    Buffer colscale(be, (size_t)out * 4, "a merged weight");
    be.dora_norms(nullptr, colscale.f(), w2.f(), nullptr, a.mag.data.f(), out, in);
    be.scale_rows(w2.f(), colscale.f(), out, in);
  }
  return w2;
}

// y[N,out] = x[N,in] W^T + b + adapter term
void Linear::forward(Backend& be, float* y, const float* x, int64_t N, LinearSave* save, GemmMode mode) const {
  if (!lora || !lora->enabled) {
    be.gemm(N, out, in, 1.0f, rows(x, in), w.weight().transposed(in), false, y, out, bias_of(*this), mode);
    return;
  }
  const Adapter& a = *lora;
  LinearSave local;
  LinearSave& s = save ? *save : local;
  s.ax = Buffer(be, (size_t)(N * a.r) * 4, "an adapter's activations");
  be.gemm(N, a.r, in, 1.0f, rows(x, in), cols(a.A.data.f(), in), false, s.ax.f(), a.r, nullptr, GemmMode::Train);
  const bool bias_now = !a.dora && b.exists();
  be.gemm(N, out, in, 1.0f, rows(x, in), w.weight().transposed(in), false, y, out, bias_now ? bias_of(*this) : nullptr,
          mode);
  be.gemm(N, out, a.r, a.scale, rows(s.ax.f(), a.r), cols(a.B.data.f(), a.r), true, y, out, nullptr, GemmMode::Train);
  if (!a.dora) return;
  // The row norms of W + s B A, recomputed every call because A and B train.
  Buffer dw(be, (size_t)(out * in) * 4, "DoRA's weight norms");
  be.gemm(out, in, a.r, a.scale, rows(a.B.data.f(), a.r), rows(a.A.data.f(), in), false, dw.f(), in, nullptr, GemmMode::Train);
  s.norm = Buffer(be, (size_t)out * 4, "DoRA's weight norms");
  s.colscale = Buffer(be, (size_t)out * 4, "DoRA's weight norms");
  Buffer tmp;
  be.dora_norms(s.norm.f(), s.colscale.f(), fp32_values(be, w, tmp), dw.f(), a.mag.data.f(), out, in);
  if (save) s.z = Buffer(be, (size_t)(N * out) * 4, "DoRA's activations");
  be.dora_scale(y, save ? s.z.f() : nullptr, s.colscale.f(), bias_of(*this), N, out);
}

void Linear::backward(Backend& be, float* dx, bool accumulate, const float* dy, const float* x, int64_t N,
                      const LinearSave& save) {
  Adapter* a = lora && lora->enabled ? lora.get() : nullptr;
  // dz: the gradient at W x + s B A x; DoRA scales it per output and feeds the magnitude.
  Buffer dz_buf;
  const float* dz = dy;
  if (a && a->dora) {
    dz_buf = Buffer(be, (size_t)(N * out) * 4, "DoRA's gradients");
    be.dora_backward(dz_buf.f(), a->mag.g(), dy, save.z.f(), save.colscale.f(), save.norm.f(), N, out);
    dz = dz_buf.f();
  }
  if (b.g()) be.column_sums(b.g(), dy, N, out);
  if (dx) be.gemm(N, in, out, 1.0f, rows(dz, out), w.weight().as_is(in), accumulate, dx, in, nullptr, GemmMode::Train);
  if (w.g()) be.gemm(out, in, N, 1.0f, cols(dz, out), rows(x, in), true, w.g(), in, nullptr, GemmMode::Train);
  if (!a) return;
  if (a->B.g())
    be.gemm(out, a->r, N, a->scale, cols(dz, out), rows(save.ax.f(), a->r), true, a->B.g(), a->r, nullptr, GemmMode::Train);
  Buffer dax(be, (size_t)(N * a->r) * 4, "an adapter's gradients");
  be.gemm(N, a->r, out, a->scale, rows(dz, out), rows(a->B.data.f(), a->r), false, dax.f(), a->r, nullptr, GemmMode::Train);
  if (a->A.g()) be.gemm(a->r, in, N, 1.0f, cols(dax.f(), a->r), rows(x, in), true, a->A.g(), in, nullptr, GemmMode::Train);
  if (dx) be.gemm(N, in, a->r, 1.0f, rows(dax.f(), a->r), rows(a->A.data.f(), in), true, dx, in, nullptr, GemmMode::Train);
}

}  // namespace temper
