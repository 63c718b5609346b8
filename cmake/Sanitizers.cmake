# ASan+UBSan for the whole tree; libFuzzer instrumentation for fuzz builds.
# UBSan's vptr check is off: it reports false positives for classes whose type info comes
# from Debian's shared libraries (seen with libfmt's buffer<char> under spdlog).
if(SOTTO_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize=vptr
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined)
endif()
if(SOTTO_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SOTTO_FUZZ needs clang (libFuzzer)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
