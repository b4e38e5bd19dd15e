include(CMakePackageConfigHelpers)

set(SPECTATOR_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/spectator-shm"
    CACHE STRING "Where the package configuration files are installed")

install(TARGETS spectator
  EXPORT spectator-shm-targets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT spectator_Development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT spectator_Runtime
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

# The public headers, and the generated ones (export.h, version.h). The
# internal ones (include-internal/: the reader that takes values and the
# collector lock) are not installed; tests/install/check.cmake checks it.
install(DIRECTORY include/ "${PROJECT_BINARY_DIR}/include/"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  COMPONENT spectator_Development
  FILES_MATCHING PATTERN "*.h")

install(EXPORT spectator-shm-targets
  NAMESPACE spectator::
  DESTINATION "${SPECTATOR_INSTALL_CMAKEDIR}"
  COMPONENT spectator_Development)

configure_package_config_file(cmake/spectator-shm-config.cmake.in
  "${PROJECT_BINARY_DIR}/spectator-shm-config.cmake"
  INSTALL_DESTINATION "${SPECTATOR_INSTALL_CMAKEDIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/spectator-shm-config-version.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/spectator-shm-config.cmake"
    "${PROJECT_BINARY_DIR}/spectator-shm-config-version.cmake"
  DESTINATION "${SPECTATOR_INSTALL_CMAKEDIR}"
  COMPONENT spectator_Development)

if(TARGET spectator-collector)
  install(TARGETS spectator-collector RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
    COMPONENT spectator_Runtime)
endif()
