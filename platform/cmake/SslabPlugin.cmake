# sslab_add_plugin(NAME SOURCES src...) builds libsslab-<NAME>.so: a MODULE
# library with hidden visibility, linked to the sslab SDK. In-tree it lands in
# the build's plugin folder; out of tree (find_package(sslab)) in the current
# binary dir, or wherever SSLAB_PLUGIN_OUTPUT_DIR points.
function(sslab_add_plugin NAME)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "sslab_add_plugin(${NAME}): SOURCES is required")
  endif()
  set(target sslab-${NAME})
  add_library(${target} MODULE ${ARG_SOURCES})
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
  if(TARGET sslab::sslab)
    target_link_libraries(${target} PRIVATE sslab::sslab ${ARG_LIBRARIES})
  else()
    target_link_libraries(${target} PRIVATE sslab ${ARG_LIBRARIES})
  endif()
  if(COMMAND sslab_internal_plugin_setup)
    sslab_internal_plugin_setup(${target})
  endif()
endfunction()
