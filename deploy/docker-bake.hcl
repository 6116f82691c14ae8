# All of Temper's images with one command:
#   docker buildx bake -f deploy/docker-bake.hcl            # both images
#   REGISTRY=ghcr.io/me TAG=0.1.0 docker buildx bake -f deploy/docker-bake.hcl --push
# Two images serve the four services: "cpu" (scorer, checkpoint store) and "cuda" (learner,
# generator); the chart picks one per service (image.cpu / image.cuda).
variable "REGISTRY" { default = "ghcr.io/temper-rl" }
variable "TAG" { default = "dev" }
variable "REVISION" { default = "unknown" }
variable "CUDA_VERSION" { default = "12.8.1" }
variable "TEMPER_CUDA_ARCHS" { default = "80 90" }

group "default" {
  targets = ["cpu", "cuda"]
}

target "_common" {
  context = "."
  platforms = ["linux/amd64"]
  args = {
    VERSION = TAG
    REVISION = REVISION
  }
}

target "cpu" {
  inherits = ["_common"]
  dockerfile = "deploy/Dockerfile"
  tags = ["${REGISTRY}/temper:${TAG}"]
}

target "cuda" {
  inherits = ["_common"]
  dockerfile = "deploy/Dockerfile.cuda"
  tags = ["${REGISTRY}/temper-cuda:${TAG}"]
  args = {
    CUDA_VERSION = CUDA_VERSION
    TEMPER_CUDA_ARCHS = TEMPER_CUDA_ARCHS
  }
}
