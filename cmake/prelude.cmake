# Refuse in-source builds: they litter the tree and cannot be cleaned reliably.
if(CMAKE_SOURCE_DIR STREQUAL CMAKE_BINARY_DIR)
  message(FATAL_ERROR
    "In-source builds are not supported. Use a build directory, e.g.\n"
    "  cmake -S . -B build\n"
    "and remove the CMakeCache.txt and CMakeFiles/ this attempt created.")
endif()
