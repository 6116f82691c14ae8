// Memory read bandwidth for the engine benchmark's decode bound (bench/shape.js compiles and runs
// it): `stream_read <threads> <MiB> <reps>` sums a buffer far larger than the caches, each thread
// its own contiguous share, and prints the best rate in GB/s (bytes read / time) as JSON.
// A decode step is a read of the weights and the KV cache, so a pure read is the ceiling to hold
// it against (a copy, as STREAM's, would also count the writes the decoder does not make).
#define _POSIX_C_SOURCE 200112L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  const float* data;
  size_t n;
  pthread_barrier_t* start;
  double sum;  // kept so the compiler cannot drop the reads
} Share;

// Thirty-two independent accumulators (four AVX vectors): one chain would put every add behind
// the previous one's latency and measure the adder, not the memory.
static void* read_share(void* arg) {
  Share* s = (Share*)arg;
  pthread_barrier_wait(s->start);
  float acc[32] = {0};
  size_t i = 0;
  for (; i + 32 <= s->n; i += 32)
    for (int j = 0; j < 32; j++) acc[j] += s->data[i + j];
  for (; i < s->n; i++) acc[0] += s->data[i];
  double total = 0;
  for (int j = 0; j < 32; j++) total += acc[j];
  s->sum = total;
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: stream_read <threads> <MiB> <reps>\n");
    return 2;
  }
  int threads = atoi(argv[1]), reps = atoi(argv[3]);
  size_t mib = (size_t)atol(argv[2]);
  if (threads < 1 || threads > 256 || reps < 1 || mib < 1) {
    fprintf(stderr, "stream_read: threads must be in [1, 256], MiB and reps positive\n");
    return 2;
  }
  size_t n = mib * 1024 * 1024 / sizeof(float);
  float* data = malloc(n * sizeof(float));
  if (!data) {
    fprintf(stderr, "stream_read: cannot allocate %zu MiB\n", mib);
    return 1;
  }
  for (size_t i = 0; i < n; i++) data[i] = (float)(i & 1023);  // faults every page in before timing
  Share* shares = calloc((size_t)threads, sizeof(Share));
  pthread_t* ids = calloc((size_t)threads, sizeof(pthread_t));
  double best = 0, checksum = 0;
  for (int r = 0; r < reps; r++) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    size_t per = n / (size_t)threads;
    for (int t = 0; t < threads; t++) {
      shares[t] = (Share){data + per * (size_t)t, t == threads - 1 ? n - per * (size_t)t : per, &start, 0};
      pthread_create(&ids[t], NULL, read_share, &shares[t]);
    }
    pthread_barrier_wait(&start);
    double t0 = now();
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    double s = now() - t0;
    pthread_barrier_destroy(&start);
    for (int t = 0; t < threads; t++) checksum += shares[t].sum;
    double rate = (double)(n * sizeof(float)) / s / 1e9;
    if (rate > best) best = rate;
  }
  printf("{\"read_gb_per_s\":%.2f,\"threads\":%d,\"mib\":%zu,\"reps\":%d,\"checksum\":%.0f}\n", best, threads, mib, reps, checksum);
  free(shares);
  free(ids);
  free(data);
  return 0;
}
