// The memory-bound kernels: RMSNorm (forward, backward), RoPE (and its inverse), SwiGLU
// (forward, backward), log-softmax + gather + entropy (forward, backward), AdamW, and sampling
// (greedy, temperature, top-k, top-p). Each against a double-precision CPU reference on fresh
// random inputs, then timed at the Qwen2-0.5B sizes with the bytes it must move (GB/s).
//   version 1: the engine's kernels (src/cuda/elementwise.cu, logprob.cu, adamw.cu, sample.cu)
// Build: make fused   Run: ./fused
#include <cstring>

#include "../../src/cuda/kernels.cuh"
#include "../../src/cuda/plan.h"
#include "common.h"

using namespace temper::cuda;

static bool test_rmsnorm() {
  const int N = 37, C = 333;
  auto x = random_vec((size_t)N * C, 1), w = random_vec(C, 2), dout = random_vec((size_t)N * C, 3), dx0 = random_vec((size_t)N * C, 4);
  const float eps = 1e-6f;
  std::vector<double> out(N * C), rstd(N), dx(dx0.begin(), dx0.end()), dw(C, 0.0);
  for (int n = 0; n < N; n++) {
    double ss = 0;
    for (int c = 0; c < C; c++) ss += (double)x[n * C + c] * x[n * C + c];
    double r = 1 / std::sqrt(ss / C + eps), dot = 0;
    rstd[n] = r;
    for (int c = 0; c < C; c++) out[n * C + c] = x[n * C + c] * r * w[c], dot += (double)w[c] * dout[n * C + c] * x[n * C + c];
    for (int c = 0; c < C; c++) {
      dx[n * C + c] += r * w[c] * dout[n * C + c] - x[n * C + c] * r * r * r / C * dot;
      dw[c] += (double)dout[n * C + c] * x[n * C + c] * r;
    }
  }
  float *dX = to_device(x), *dW = to_device(w), *dO = to_device(dout), *ddx = to_device(dx0), *o, *rs, *ddw;
  DEV_CHECK(cudaMalloc(&o, N * C * 4));
  DEV_CHECK(cudaMalloc(&rs, N * 4));
  DEV_CHECK(cudaMalloc(&ddw, C * 4));
  DEV_CHECK(cudaMemset(ddw, 0, C * 4));
  poison(o, N * C), poison(rs, N);
  rmsnorm_forward(0, o, rs, dX, dW, N, C, eps);
  rmsnorm_backward(0, ddx, ddw, dO, dX, dW, rs, N, C);
  bool ok = report("rmsnorm forward", rel_err(to_host(o, N * C), out), 1e-6);
  ok &= report("rmsnorm rstd", rel_err(to_host(rs, N), rstd), 1e-6);
  ok &= report("rmsnorm backward dx (accumulated)", rel_err(to_host(ddx, N * C), dx), 1e-5);
  ok &= report("rmsnorm backward dw", rel_err(to_host(ddw, C), dw), 1e-5);
  return ok;
}

static bool test_rope() {
  const int N = 19, heads = 3, D = 64, P = 64;
  std::vector<float> cs(P * D / 2), sn(P * D / 2);
  for (int p = 0; p < P; p++)
    for (int i = 0; i < D / 2; i++) {
      double inv = std::pow(10000.0, -2.0 * i / D);
      cs[p * D / 2 + i] = (float)std::cos(p * inv), sn[p * D / 2 + i] = (float)std::sin(p * inv);
    }
  auto x = random_vec((size_t)N * heads * D, 5);
  std::vector<int32_t> pos(N);
  for (int n = 0; n < N; n++) pos[n] = (n * 7) % P;
  std::vector<double> ref(x.size());
  for (int n = 0; n < N; n++)
    for (int h = 0; h < heads; h++)
      for (int i = 0; i < D / 2; i++) {
        size_t a = ((size_t)n * heads + h) * D + i, b = a + D / 2;
        double c = cs[pos[n] * D / 2 + i], s = sn[pos[n] * D / 2 + i];
        ref[a] = x[a] * c - x[b] * s, ref[b] = x[b] * c + x[a] * s;
      }
  float *dx = to_device(x), *dc = to_device(cs), *ds = to_device(sn);
  int32_t* dp = to_device(pos);
  rope(0, dx, dp, N, heads, D, dc, ds, false);
  bool ok = report("rope", rel_err(to_host(dx, x.size()), ref), 1e-6);
  rope(0, dx, dp, N, heads, D, dc, ds, true);
  std::vector<double> back(x.begin(), x.end());
  ok &= report("rope inverse undoes it", rel_err(to_host(dx, x.size()), back), 1e-6);
  return ok;
}

static bool test_swiglu() {
  const int n = 10007;
  auto g = random_vec(n, 6, 3), u = random_vec(n, 7), dh = random_vec(n, 8);
  std::vector<double> h(n), dg(n), du(n);
  for (int i = 0; i < n; i++) {
    double s = 1 / (1 + std::exp(-(double)g[i]));
    h[i] = g[i] * s * u[i];
    dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] = dh[i] * g[i] * s;
  }
  float *dG = to_device(g), *dU = to_device(u), *dH = to_device(dh), *o, *og, *ou;
  DEV_CHECK(cudaMalloc(&o, n * 4));
  DEV_CHECK(cudaMalloc(&og, n * 4));
  DEV_CHECK(cudaMalloc(&ou, n * 4));
  poison(o, n), poison(og, n), poison(ou, n);
  swiglu_forward(0, o, dG, dU, n);
  swiglu_backward(0, og, ou, dH, dG, dU, n);
  bool ok = report("swiglu forward", rel_err(to_host(o, n), h), 1e-6);
  ok &= report("swiglu backward dg", rel_err(to_host(og, n), dg), 1e-6);
  ok &= report("swiglu backward du", rel_err(to_host(ou, n), du), 1e-6);
  return ok;
}

static bool test_logprob() {
  const int N = 23, V = 5003;
  auto l = random_vec((size_t)N * V, 9, 2), w = random_vec(N, 10);
  std::vector<int32_t> t(N);
  for (int n = 0; n < N; n++) t[n] = n % 5 == 4 ? -1 : (n * 997) % V;
  std::vector<double> lp(N), ent(N), lse(N), dl((size_t)N * V);
  for (int n = 0; n < N; n++) {
    const float* r = &l[(size_t)n * V];
    double mx = *std::max_element(r, r + V), z = 0, zl = 0;
    for (int j = 0; j < V; j++) z += std::exp(r[j] - mx), zl += std::exp(r[j] - mx) * r[j];
    double L = mx + std::log(z);
    bool on = t[n] >= 0;
    lse[n] = on ? L : 0, lp[n] = on ? r[t[n]] - L : 0, ent[n] = on ? L - zl / z : 0;
    for (int j = 0; j < V; j++) dl[(size_t)n * V + j] = on ? w[n] * ((j == t[n]) - std::exp(r[j] - L)) : 0;
  }
  float *dl_in = to_device(l), *dw = to_device(w), *olp, *oent, *olse;
  int32_t* dt = to_device(t);
  DEV_CHECK(cudaMalloc(&olp, N * 4));
  DEV_CHECK(cudaMalloc(&oent, N * 4));
  DEV_CHECK(cudaMalloc(&olse, N * 4));
  poison(olp, N), poison(oent, N), poison(olse, N);
  logprob_forward(0, olp, oent, olse, dl_in, dt, N, V);
  bool ok = report("logprob forward", rel_err(to_host(olp, N), lp), 1e-6);
  ok &= report("logprob entropy", rel_err(to_host(oent, N), ent), 1e-5);
  logprob_backward(0, dl_in, dl_in, olse, dt, dw, N, V);  // in place, as the engine runs it
  ok &= report("logprob backward (in place)", rel_err(to_host(dl_in, (size_t)N * V), dl), 1e-5);
  return ok;
}

static bool test_adamw() {
  const int n = 100003;
  auto p = random_vec(n, 11), g = random_vec(n, 12), m = random_vec(n, 13, 0.1f), v = random_vec(n, 14, 0.1f);
  for (auto& x : v) x = x * x;
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, gscale = 0.5;
  const int t = 3;
  const double bc1 = 1 - std::pow(b1, t), bc2 = std::sqrt(1 - std::pow(b2, t));
  std::vector<double> ref(n);
  for (int i = 0; i < n; i++) {
    double gi = g[i] * gscale, mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    ref[i] = p[i] * (1 - lr * wd) - lr / bc1 * mi / (std::sqrt(vi) / bc2 + eps);
  }
  float *dp = to_device(p), *dg = to_device(g), *dm = to_device(m), *dv = to_device(v);
  bf16* d16;
  DEV_CHECK(cudaMalloc(&d16, n * 2));
  adamw(0, dp, d16, dg, dm, dv, n, (float)gscale, (float)(lr / bc1), (float)(1 - lr * wd), (float)b1, (float)b2,
        (float)eps, (float)(1 / bc2));
  auto out = to_host(dp, n);
  bool ok = report("adamw master weights", rel_err(out, ref), 1e-6);
  std::vector<uint16_t> bits(n);
  DEV_CHECK(cudaMemcpy(bits.data(), d16, n * 2, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < n; i++) bad += bits[i] != bf16_bits(out[i]);
  std::printf("  %-46s %d of %d differ  %s\n", "adamw bf16 copy = round(master)", bad, n, bad ? "FAIL" : "ok");
  double gs = 0;
  for (float x : g) gs += (double)x * x;
  double* acc;
  DEV_CHECK(cudaMalloc(&acc, 8));
  DEV_CHECK(cudaMemset(acc, 0, 8));
  sum_squares(0, acc, dg, n);
  double got;
  DEV_CHECK(cudaMemcpy(&got, acc, 8, cudaMemcpyDeviceToHost));
  ok &= report("sum of squares", std::fabs(got - gs) / gs, 1e-6);
  return ok && bad == 0;
}

// The CPU backend's pick() (src/cpu/sample.cc), in double where it sums.
static int cpu_pick(const float* l, int V, float temp, int top_k, float top_p, double u) {
  float mx = *std::max_element(l, l + V);
  int arg = (int)(std::max_element(l, l + V) - l);
  if (temp <= 0) return arg;
  std::vector<float> p(V);
  for (int j = 0; j < V; j++) p[j] = std::exp((l[j] - mx) / temp);
  auto at_least = [&](float t, double* mass, double* count) {
    *mass = 0, *count = 0;
    for (float x : p)
      if (x >= t) *mass += x, *count += 1;
  };
  auto highest = [&](float floor, auto ok) {
    uint32_t lo, hi = 0x3F800000u;
    std::memcpy(&lo, &floor, 4);
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo + 1) / 2;
      float f;
      std::memcpy(&f, &mid, 4);
      double m, c;
      at_least(f, &m, &c);
      if (ok(m, c)) lo = mid;
      else hi = mid - 1;
    }
    float f;
    std::memcpy(&f, &lo, 4);
    return f;
  };
  float cut = 0;
  double mass, count;
  if (top_k > 0 && top_k < V) cut = highest(0.0f, [&](double, double c) { return c >= top_k; });
  if (top_p < 1) {
    at_least(cut, &mass, &count);
    double target = top_p * mass;
    cut = highest(cut, [&](double m, double) { return m >= target; });
  }
  at_least(cut, &mass, &count);
  double x = u * mass, acc = 0;
  int chosen = arg;
  for (int j = 0; j < V; j++) {
    if (p[j] < cut) continue;
    acc += p[j];
    chosen = j;
    if (x < acc) break;
  }
  return chosen;
}

static bool test_sample() {
  const int R = 64, V = 3001;
  auto l = random_vec((size_t)R * V, 15, 3);
  std::vector<int64_t> row(R);
  std::vector<double> u(R);
  std::mt19937_64 rng(16);
  for (int i = 0; i < R; i++) row[i] = (i * 5) % R, u[i] = (double)(rng() >> 11) * 0x1.0p-53;
  float* dl = to_device(l);
  int64_t* dr = to_device(row);
  double* du = to_device(u);
  int32_t* tok;
  float* lp;
  DEV_CHECK(cudaMalloc(&tok, R * 4));
  DEV_CHECK(cudaMalloc(&lp, R * 4));
  bool ok = true;
  struct Mode {
    float temp;
    int top_k;
    float top_p;
  } modes[] = {{0, 0, 1}, {1, 0, 1}, {0.7f, 0, 1}, {1, 50, 1}, {1, 0, 0.9f}, {0.8f, 40, 0.95f}};
  for (auto md : modes) {
    sample(0, tok, lp, dl, dr, du, R, V, md.temp, md.top_k, md.top_p);
    auto got = to_host(tok, R);
    auto glp = to_host(lp, R);
    int same = 0;
    std::vector<double> want_lp(R);
    std::vector<float> glpf(R);
    for (int i = 0; i < R; i++) {
      const float* r = &l[(size_t)row[i] * V];
      same += got[i] == cpu_pick(r, V, md.temp, md.top_k, md.top_p, u[i]);
      double mx = *std::max_element(r, r + V), z = 0;
      for (int j = 0; j < V; j++) z += std::exp(r[j] - mx);
      want_lp[i] = r[got[i]] - mx - std::log(z);
      glpf[i] = glp[i];
    }
    char what[96];
    std::snprintf(what, sizeof what, "sample T%.1f k%d p%.2f: %d/%d picks as the CPU", md.temp, md.top_k, md.top_p, same, R);
    // A draw within rounding of a cut may differ; allow one in 64.
    ok &= report(what, (double)(R - same) / R, 2.0 / R);
    ok &= report("  log-prob of the pick", rel_err(glpf, want_lp), 1e-5);
  }
  return ok;
}

int main() {
  device_sms();
  bool ok = true;
  std::printf("correctness\n");
  ok &= test_rmsnorm();
  ok &= test_rope();
  ok &= test_swiglu();
  ok &= test_logprob();
  ok &= test_adamw();
  ok &= test_sample();

  std::printf("timing (median of 20), Qwen2-0.5B sizes\n");
  const int N = 8192, C = 896, F = 4864, V = 151936;
  float *x, *y, *w, *r, *g, *u, *h;
  DEV_CHECK(cudaMalloc(&x, (size_t)N * F * 4));
  DEV_CHECK(cudaMalloc(&y, (size_t)N * F * 4));
  DEV_CHECK(cudaMalloc(&g, (size_t)N * F * 4));
  DEV_CHECK(cudaMalloc(&u, (size_t)N * F * 4));
  DEV_CHECK(cudaMalloc(&h, (size_t)N * F * 4));
  DEV_CHECK(cudaMalloc(&w, C * 4));
  DEV_CHECK(cudaMalloc(&r, N * 4));
  for (float* p : {x, y, g, u, h}) DEV_CHECK(cudaMemset(p, 0x3c, (size_t)N * F * 4));  // ~0.01, not zero
  DEV_CHECK(cudaMemset(w, 0x3f, C * 4));
  auto line = [](const char* what, float ms, double bytes) {
    std::printf("  %-34s %8.3f ms %8.1f GB/s\n", what, ms, bytes / ms / 1e6);
  };
  line("rmsnorm fwd 8192x896", time_ms([&] { rmsnorm_forward(0, y, r, x, w, N, C, 1e-6f); }), 2.0 * N * C * 4);
  line("rmsnorm bwd 8192x896", time_ms([&] { rmsnorm_backward(0, y, w, x, x, w, r, N, C); }), 4.0 * N * C * 4);
  line("swiglu fwd 8192x4864", time_ms([&] { swiglu_forward(0, h, g, u, (int64_t)N * F); }), 3.0 * N * F * 4);
  line("swiglu bwd 8192x4864", time_ms([&] { swiglu_backward(0, x, y, h, g, u, (int64_t)N * F); }), 5.0 * N * F * 4);
  const int LN = 1024;
  float *logits, *lp, *lse;
  int32_t* tgt;
  DEV_CHECK(cudaMalloc(&logits, (size_t)LN * V * 4));
  DEV_CHECK(cudaMemset(logits, 0x3c, (size_t)LN * V * 4));
  DEV_CHECK(cudaMalloc(&lp, LN * 4));
  DEV_CHECK(cudaMalloc(&lse, LN * 4));
  DEV_CHECK(cudaMalloc(&tgt, LN * 4));
  DEV_CHECK(cudaMemset(tgt, 0, LN * 4));
  line("logprob fwd 1024x151936", time_ms([&] { logprob_forward(0, lp, lp, lse, logits, tgt, LN, V); }), 1.0 * LN * V * 4);
  line("logprob bwd 1024x151936", time_ms([&] { logprob_backward(0, logits, logits, lse, tgt, lp, LN, V); }), 2.0 * LN * V * 4);
  const int64_t P = (int64_t)N * F;  // 40M parameters' worth
  bf16* p16;
  DEV_CHECK(cudaMalloc(&p16, P * 2));
  line("adamw 40M", time_ms([&] { adamw(0, x, p16, y, g, u, P, 1, 1e-5f, 1, 0.9f, 0.999f, 1e-8f, 1); }), P * (4 * 4 + 3 * 4 + 2.0));
  std::vector<int64_t> rows(256);
  for (int i = 0; i < 256; i++) rows[i] = i;
  std::vector<double> us(256, 0.5);
  int64_t* drow = to_device(rows);
  double* du = to_device(us);
  int32_t* tok;
  DEV_CHECK(cudaMalloc(&tok, 256 * 4));
  line("sample 256x151936 T1", time_ms([&] { sample(0, tok, lp, logits, drow, du, 256, V, 1, 0, 1); }), 256.0 * V * 4);
  line("sample 256x151936 T1 k50 p0.9", time_ms([&] { sample(0, tok, lp, logits, drow, du, 256, V, 1, 50, 0.9f); }, 5, 1), 256.0 * V * 4);
  std::printf(ok ? "fused: all checks passed\n" : "fused: CHECKS FAILED\n");
  return ok ? 0 : 1;
}
