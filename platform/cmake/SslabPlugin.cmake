# sslab_add_plugin(NAME SOURCES src... [CORE_SOURCES src...] [LIBRARIES lib...])
# builds libsslab-<NAME>.so: a MODULE library with hidden visibility, linked to
# the sslab SDK. In-tree it lands in the build's plugin folder; out of tree
# (find_package(sslab)) in the current binary dir, or wherever
# SSLAB_PLUGIN_OUTPUT_DIR points.
#
# CORE_SOURCES (optional) are compiled once into an OBJECT library
# sslab-<NAME>-core that the plugin links; tests and tools that need the
# plugin's C++ API link sslab-<NAME>-core too instead of compiling the same
# sources again. Keep the file with SSLAB_PLUGIN(...) in SOURCES.
function(sslab_add_plugin NAME)
  cmake_parse_arguments(ARG "" "" "SOURCES;CORE_SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "sslab_add_plugin(${NAME}): SOURCES is required")
  endif()
  set(target sslab-${NAME})
  if(TARGET sslab::sslab)
    set(sdk sslab::sslab)
  else()
    set(sdk sslab)
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  if(ARG_CORE_SOURCES)
    set(core ${target}-core)
    add_library(${core} OBJECT ${ARG_CORE_SOURCES})
    set_target_properties(${core} PROPERTIES
      POSITION_INDEPENDENT_CODE ON
      CXX_VISIBILITY_PRESET hidden
      VISIBILITY_INLINES_HIDDEN ON
      CXX_STANDARD 17
      CXX_STANDARD_REQUIRED ON)
    # PUBLIC: whoever links the objects (the plugin, a test) needs the same libraries.
    target_link_libraries(${core} PUBLIC ${sdk} ${ARG_LIBRARIES})
    target_include_directories(${core} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${target} PRIVATE ${core})
    if(COMMAND sslab_internal_plugin_setup)
      sslab_internal_compile_setup(${core})
    endif()
  endif()
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME sslab-${NAME}
    PREFIX lib
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON)
  if(DEFINED SSLAB_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SSLAB_PLUGIN_OUTPUT_DIR})
  endif()
  target_link_libraries(${target} PRIVATE ${sdk} ${ARG_LIBRARIES})
  if(COMMAND sslab_internal_plugin_setup)
    sslab_internal_plugin_setup(${target})
  endif()
endfunction()
