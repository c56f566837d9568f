# The precompiled <torch/torch.h> (~700 MB) for the sources that include libtorch, and
# not for the others: loading the header image costs a torch-free translation unit more
# than compiling its own headers (eval/gates.cpp at -O3: 14 s with it, 6 s without;
# 76 of the 165 sources of the PCH targets never touch torch).

# A source needs torch when it, or a project header it includes (#include "…", followed
# transitively), includes <torch/…>, <ATen/…> or <c10/…>. A source that uses torch without
# including it fails to build once it skips the PCH, so the scan cannot silently go wrong.
function(character_needs_torch source out_var)
  set(todo "${source}")
  set(seen "")
  while(todo)
    list(POP_FRONT todo file)
    if(file IN_LIST seen)
      continue()
    endif()
    list(APPEND seen "${file}")
    get_filename_component(dir "${file}" DIRECTORY)
    file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include")
    foreach(line IN LISTS includes)
      if(line MATCHES "<(torch|ATen|c10)/")
        set(${out_var} TRUE PARENT_SCOPE)
        return()
      endif()
      if(line MATCHES "\"([^\"]+)\"")
        if(EXISTS "${CMAKE_SOURCE_DIR}/${CMAKE_MATCH_1}")
          list(APPEND todo "${CMAKE_SOURCE_DIR}/${CMAKE_MATCH_1}")
        elseif(EXISTS "${dir}/${CMAKE_MATCH_1}")
          list(APPEND todo "${dir}/${CMAKE_MATCH_1}")
        endif()
      endif()
    endforeach()
  endwhile()
  set(${out_var} FALSE PARENT_SCOPE)
endfunction()

# One precompiled <torch/torch.h> shared by every torch-using target (REUSE_FROM),
# skipped by the target's torch-free sources.
function(character_use_pch target)
  target_precompile_headers(${target} REUSE_FROM character_pch)
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  foreach(source IN LISTS sources)
    if(NOT IS_ABSOLUTE "${source}")
      set(source "${source_dir}/${source}")
    endif()
    if(NOT source MATCHES "\\.cpp$")
      continue()
    endif()
    character_needs_torch("${source}" needs_torch)
    if(NOT needs_torch)
      set_source_files_properties("${source}" TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
endfunction()
