# Every external dependency, found once. Debian 12 versions are the baseline (see README).

find_package(Threads REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(nlohmann_json 3.10 CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)  # the cache service's solution store

# xxHash: header + shared library, no CMake config in Debian.
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY xxhash REQUIRED)
add_library(deepsearch_xxhash INTERFACE)
target_include_directories(deepsearch_xxhash SYSTEM INTERFACE ${XXHASH_INCLUDE_DIR})
target_link_libraries(deepsearch_xxhash INTERFACE ${XXHASH_LIBRARY})

# PCRE2 (the pre-tokenizer regexes) and utf8proc (NFC normalisation) for the tokenizers:
# pkg-config only, no CMake configs in Debian.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
# zstd (weight deltas): pkg-config only as well.
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
# cpp-httplib (the services' Prometheus endpoints): pkg-config only.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

# LibTorch: Debian's 1.13 (CPU) or the one inside a pip torch 2.x wheel
# (-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')).
find_package(Torch REQUIRED)
# CUDA is on exactly when the LibTorch found was built with it.
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(DEEPSEARCH_CUDA ON)
else()
  set(DEEPSEARCH_CUDA OFF)
endif()
if(DEEPSEARCH_CUDA)
  # Global, so the PCH and every torch translation unit see the same definitions.
  add_compile_definitions(DEEPSEARCH_HAS_CUDA=1)
endif()
# The torch imported target carries -D_GLIBCXX_USE_CXX11_ABI and its include dirs; make the
# include dirs -isystem so -Werror never fires inside torch headers.
get_target_property(_torch_includes torch INTERFACE_INCLUDE_DIRECTORIES)
set_target_properties(torch PROPERTIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_torch_includes}")

# The one precompiled header for torch translation units.
if(DEEPSEARCH_USE_PCH)
  add_library(deepsearch_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cc)
  target_link_libraries(deepsearch_torch_pch PRIVATE torch)
  target_precompile_headers(deepsearch_torch_pch PRIVATE ${PROJECT_SOURCE_DIR}/common/model/torch_pch.h)
endif()

if(DEEPSEARCH_WITH_GRPC)
  # Debian's protobuf has no CMake config: CMake's FindProtobuf module.
  find_package(Protobuf REQUIRED)
  find_package(gRPC CONFIG REQUIRED)
  find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
endif()

if(DEEPSEARCH_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
  include(GoogleTest)
endif()
if(DEEPSEARCH_BUILD_BENCHMARKS)
  find_package(benchmark CONFIG REQUIRED)
endif()
