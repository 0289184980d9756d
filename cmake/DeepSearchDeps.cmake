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

# Protobuf and gRPC before LibTorch: a pip torch without a protobuf of its own to export
# defines protobuf::libprotobuf as an empty stand-in unless the target exists already.
if(DEEPSEARCH_WITH_GRPC)
  # Debian's protobuf has no CMake config: CMake's FindProtobuf module. It must find
  # Debian's protoc and headers, which gRPC is built with, and not the protoc 3.13 and the
  # headers a pip torch bundles when CMAKE_PREFIX_PATH names the torch folder.
  set(_torch_prefixes "")
  foreach(_p IN LISTS CMAKE_PREFIX_PATH)
    if(EXISTS "${_p}/share/cmake/Torch/TorchConfig.cmake")
      list(APPEND _torch_prefixes "${_p}")
    endif()
  endforeach()
  set(CMAKE_IGNORE_PREFIX_PATH ${_torch_prefixes})
  find_package(Protobuf REQUIRED)
  unset(CMAKE_IGNORE_PREFIX_PATH)
  find_package(gRPC CONFIG REQUIRED)
  find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
  # cpp-httplib (the services' Prometheus endpoints): pkg-config only.
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
endif()

# LibTorch: Debian's 1.13 (CPU) or the one inside a pip torch 2.x wheel
# (-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')).
#
# A CUDA LibTorch's config picks the GPU architectures to build for, and without a list it
# runs a probe program on the GPU, which fails on a machine without one (CI, the developers'
# machines). The project compiles no device code of its own, so the list only names the
# targets for the record; Hopper (sm_90) is the GPU of the project's machines.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()
find_package(Torch REQUIRED)
# TorchConfig finds its libraries with find_library, which searches the system's folders
# before its own: with Debian's libtorch-dev installed, a pip torch given by its cmake folder
# would link Debian's libtorch.so (1.13) under 2.x headers. Refuse any such mix.
foreach(_lib TORCH_LIBRARY c10_LIBRARY)
  get_filename_component(_found "${${_lib}}" REALPATH)
  get_filename_component(_prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
  string(FIND "${_found}" "${_prefix}/" _at)
  if(NOT _at EQUAL 0)
    message(FATAL_ERROR
      "LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}, but ${_lib} is ${${_lib}}: its "
      "libraries come from another LibTorch. Point CMAKE_PREFIX_PATH at the torch folder itself "
      "(for a pip torch: python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))'), "
      "in a fresh build folder.")
  endif()
endforeach()
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
# The pip torch 2.x wheels export parts of the libstdc++ they link statically (std::filesystem
# among them, pytorch/pytorch#133437), as strong symbols. The dynamic linker binds every
# std::filesystem call of ours to the first definition it meets, libtorch's, which crashes
# when called from outside torch. Naming libstdc++ before any other library makes its
# definitions the ones found first, for our code and torch's alike.
if(Torch_VERSION VERSION_GREATER_EQUAL 2)
  add_link_options("LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")
endif()

# A pip torch's include folder also holds the headers of libraries it bundles, among them
# fmt 12 and protobuf 3.13, which would shadow Debian's fmt 9 (spdlog's) and protobuf 3.21
# (the generated code's) in every translation unit that sees torch's headers. Torch's own
# libraries keep their copies inside; the project's code sees one fmt and one protobuf, the
# system's: torch's include folder is replaced by a mirror of it without those two.
set(_torch_include "${TORCH_INSTALL_PREFIX}/include")
if(EXISTS "${_torch_include}/fmt" OR EXISTS "${_torch_include}/google")
  set(_mirror "${PROJECT_BINARY_DIR}/torch-include")
  file(REMOVE_RECURSE "${_mirror}")
  file(MAKE_DIRECTORY "${_mirror}")
  file(GLOB _entries RELATIVE "${_torch_include}" "${_torch_include}/*")
  foreach(_entry IN LISTS _entries)
    if(NOT _entry STREQUAL "fmt" AND NOT _entry STREQUAL "google")
      file(CREATE_LINK "${_torch_include}/${_entry}" "${_mirror}/${_entry}" SYMBOLIC)
    endif()
  endforeach()
  foreach(_target IN ITEMS c10 c10_cuda torch_cpu torch_cuda torch torch_nvshmem headeronly)
    if(TARGET ${_target})
      get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
      if(_dirs)
        list(TRANSFORM _dirs REPLACE "^${_torch_include}$" "${_mirror}")
        set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_dirs}")
      endif()
    endif()
  endforeach()
  list(TRANSFORM TORCH_INCLUDE_DIRS REPLACE "^${_torch_include}$" "${_mirror}")
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

if(DEEPSEARCH_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
  include(GoogleTest)
endif()
if(DEEPSEARCH_BUILD_BENCHMARKS)
  find_package(benchmark CONFIG REQUIRED)
endif()
