# The fuzz build (CHARACTER_FUZZ=ON, `make fuzz`): clang with libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer over the libraries that read outside input and need no torch
# (base, model/io, model/text, personas, remote), plus the few torch-free sources of eval/
# and pipeline/ that parse files; one harness per parser in fuzz/.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CHARACTER_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
endif()
find_package(nlohmann_json 3 REQUIRED)
find_package(TBB REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
find_package(yaml-cpp REQUIRED)
find_package(CURL REQUIRED)

# Every object instrumented for coverage and checked; -O1 keeps the stacks readable.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer -g -O1 -Wall -Wextra -Wno-unused-parameter)
add_link_options(-fsanitize=address,undefined)
include_directories(${CMAKE_SOURCE_DIR})

add_subdirectory(base)
add_subdirectory(model)  # io and text only (model/CMakeLists.txt skips arch in this build)
add_subdirectory(personas)
add_subdirectory(remote)
add_subdirectory(fuzz)
