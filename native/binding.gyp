# The engine addon. scripts/build.js finds OpenBLAS and nvcc and passes what it found
# as the variables below; run `npm run rebuild -w @temper/native` rather than node-gyp.
{
  "variables": {
    "temper_cuda%": 0,
    "cuda_home%": "/usr/local/cuda",
    "cuda_archs%": "80 90",
    "openblas_include%": "/usr/include",
    "openblas_lib%": "/usr/lib",
    "temper_march%": "native"
  },
  "targets": [
    {
      "target_name": "temper_engine",
      "sources": [
        "src/addon.cc",
        "src/model_binding.cc",
        "src/backend/block_cache.cc",
        "src/io/json.cc",
        "src/io/safetensors.cc",
        "src/model/params.cc",
        "src/model/normals.cc",
        "src/model/rope.cc",
        "src/model/linear.cc",
        "src/model/train.cc",
        "src/model/optimizer.cc",
        "src/model/adapters.cc",
        "src/model/kv_cache.cc",
        "src/model/scheduler.cc",
        "src/model/generate.cc",
        "src/cpu/backend.cc",
        "src/cpu/blas.cc",
        "src/cpu/threadpool.cc",
        "src/cpu/matmul.cc",
        "src/cpu/matmul_bf16.cc",
        "src/cpu/gemm_small.cc",
        "src/cpu/matmul_invariant.cc",
        "src/cpu/embedding.cc",
        "src/cpu/rmsnorm.cc",
        "src/cpu/rope.cc",
        "src/cpu/attention.cc",
        "src/cpu/swiglu.cc",
        "src/cpu/logprob.cc",
        "src/cpu/adamw.cc",
        "src/cpu/dora.cc",
        "src/cpu/sample.cc",
        "src/cuda/absent.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "src",
        "<(openblas_include)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-march=<(temper_march)", "-Wall", "-Wextra"],
      "libraries": ["-L<(openblas_lib)", "-lopenblas", "-Wl,-rpath,<(openblas_lib)"],
      "conditions": [
        ["temper_cuda==1", {
          "defines": ["TEMPER_CUDA=1"],
          "include_dirs": ["<(cuda_home)/include"],
          "sources": [
            "src/cuda/device.cu",
            "src/cuda/gemm.cu",
            "src/cuda/elementwise.cu",
            "src/cuda/attention.cu",
            "src/cuda/logprob.cu",
            "src/cuda/sample.cu",
            "src/cuda/adamw.cu",
            "src/cuda/backend.cu"
          ],
          "libraries": ["-L<(cuda_home)/lib64", "-lcudart", "-Wl,-rpath,<(cuda_home)/lib64"],
          "rules": [
            {
              "rule_name": "nvcc",
              "extension": "cu",
              "inputs": ["<(RULE_INPUT_PATH)"],
              "outputs": ["<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o"],
              "action": [
                "node", "scripts/nvcc.js", "<(cuda_home)", "<(cuda_archs)",
                "<(RULE_INPUT_PATH)", "<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o"
              ],
              "message": "nvcc <(RULE_INPUT_PATH)",
              "process_outputs_as_sources": 1
            }
          ]
        }]
      ]
    }
  ]
}
