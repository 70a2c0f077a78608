# Read by CPack once per generator (CPACK_PROJECT_CONFIG_FILE): picks the script that turns the
# common staging tree into what that format expects, before the package is made.
if(CPACK_GENERATOR STREQUAL "DEB")
  set(CPACK_PRE_BUILD_SCRIPTS ${CPACK_CERTVISOR_SOURCE_DIR}/packaging/cpack/deb.cmake)
elseif(CPACK_GENERATOR STREQUAL "RPM")
  set(CPACK_PRE_BUILD_SCRIPTS ${CPACK_CERTVISOR_SOURCE_DIR}/packaging/cpack/rpm.cmake)
endif()
