# Installs this build into a scratch prefix, then configures, builds and runs
# tests/install against it. Invoked by ctest (test "install_consumer").
set(prefix "${WORK_DIR}/prefix")
set(consumer "${WORK_DIR}/consumer")
file(REMOVE_RECURSE "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
# Only public headers may be installed: never the internal read side
# (include-internal/: the reader that takes values, the collector lock).
file(GLOB_RECURSE installed RELATIVE "${prefix}/include" "${prefix}/include/*")
foreach(f IN LISTS installed)
  if(NOT f MATCHES "^spectator/" OR f MATCHES "^spectator/internal/" OR
     f MATCHES "(snapshot|reader|collector_lock)\\.h$")
    message(FATAL_ERROR "unexpected installed header: ${f}")
  endif()
endforeach()
file(GLOB_RECURSE internal RELATIVE "${SOURCE_DIR}/include-internal" "${SOURCE_DIR}/include-internal/*")
if(NOT internal)
  message(FATAL_ERROR "no internal headers found in ${SOURCE_DIR}/include-internal")
endif()
foreach(f IN LISTS internal)
  if(EXISTS "${prefix}/include/${f}")
    message(FATAL_ERROR "internal header installed: ${f}")
  endif()
endforeach()
if(NOT EXISTS "${prefix}/include/spectator/version.h")
  message(FATAL_ERROR "the generated spectator/version.h is not installed")
endif()
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/install" -B "${consumer}" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_FLAGS=${FLAGS}")
run("${CMAKE_COMMAND}" --build "${consumer}")
run("${consumer}/consumer" "${prefix}/bin/spectator-collector")
