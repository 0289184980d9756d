# Build conventions shared by every target: warnings, ccache, the torch precompiled header,
# and helpers that declare libraries, tests and benchmarks in one line each.

if(DEEPSEARCH_USE_CCACHE)
  find_program(DEEPSEARCH_CCACHE ccache)
  if(DEEPSEARCH_CCACHE)
    # The sloppiness settings let ccache cache translation units that use the PCH
    # (GCC needs -fpch-preprocess for that, added in deepsearch_use_torch_pch).
    set(CMAKE_CXX_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        ${DEEPSEARCH_CCACHE})
  endif()
endif()

# Warnings for project code. Third-party headers come in as -isystem (imported targets),
# so -Werror only ever fires on our own code.
set(DEEPSEARCH_WARNINGS -Wall -Wextra -Wnon-virtual-dtor -Wimplicit-fallthrough)
if(DEEPSEARCH_WERROR)
  list(APPEND DEEPSEARCH_WARNINGS -Werror)
endif()

function(deepsearch_warnings target)
  target_compile_options(${target} PRIVATE ${DEEPSEARCH_WARNINGS})
endfunction()

# deepsearch_library(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [TORCH])
# One static library; the include root is the repository root, so headers are included as
# "common/core/status.h". TORCH marks a target whose translation units include LibTorch:
# they share the one precompiled header.
function(deepsearch_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  add_library(deepsearch::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/include)
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  deepsearch_warnings(${name})
  if(ARG_TORCH)
    deepsearch_use_torch_pch(${name})
  endif()
endfunction()

# deepsearch_executable(NAME SOURCES ... DEPS ... [TORCH])
function(deepsearch_executable name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  deepsearch_warnings(${name})
  if(ARG_TORCH)
    deepsearch_use_torch_pch(${name})
  endif()
endfunction()

# deepsearch_test(NAME SOURCES ... DEPS ... [TORCH] [LABELS ...])
# A GoogleTest binary; its tests are listed at ctest time (PRE_TEST), so building the
# suite never runs it.
function(deepsearch_test name)
  cmake_parse_arguments(ARG "TORCH" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  deepsearch_executable(${name} SOURCES ${ARG_SOURCES} DEPS ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  if(ARG_TORCH)
    deepsearch_use_torch_pch(${name})
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}"
               ENVIRONMENT "DEEPSEARCH_SOURCE_DIR=${PROJECT_SOURCE_DIR};DEEPSEARCH_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# The torch translation units share one precompiled header, built once in
# deepsearch_torch_pch and reused (REUSE_FROM) by every TORCH target.
function(deepsearch_use_torch_pch target)
  if(NOT DEEPSEARCH_USE_PCH)
    return()
  endif()
  if(NOT TARGET deepsearch_torch_pch)
    message(FATAL_ERROR "deepsearch_use_torch_pch(${target}) before the PCH target exists")
  endif()
  # Torch's interface definitions (USE_DISTRIBUTED, ...) must match the PCH's.
  target_link_libraries(${target} PRIVATE torch)
  target_precompile_headers(${target} REUSE_FROM deepsearch_torch_pch)
  # A PCH GCC cannot use would be ignored silently; make that a (fatal) warning.
  target_compile_options(${target} PRIVATE -Winvalid-pch)
  if(DEEPSEARCH_CCACHE)
    target_compile_options(${target} PRIVATE -fpch-preprocess)
  endif()
endfunction()
