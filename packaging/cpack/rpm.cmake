# Runs inside CPack before the .rpm is made (CPACK_PRE_BUILD_SCRIPTS): RPM's differences from the
# staging tree, which is laid out for Debian.
include(${CPACK_CERTVISOR_SOURCE_DIR}/packaging/cpack/common.cmake)

# The unit goes to /usr/lib/systemd/system on RPM systems (the build puts it in
# /lib/systemd/system for Debian).
if(IS_DIRECTORY "${stage}/lib/systemd/system")
  file(MAKE_DIRECTORY "${stage}/usr/lib/systemd/system")
  file(GLOB units "${stage}/lib/systemd/system/*")
  foreach(unit ${units})
    get_filename_component(name "${unit}" NAME)
    file(RENAME "${unit}" "${stage}/usr/lib/systemd/system/${name}")
  endforeach()
  file(REMOVE_RECURSE "${stage}/lib")
  # CPack lists files installed to an absolute path as %config: the unit is not, and has moved.
  list(FILTER CPACK_ABSOLUTE_DESTINATION_FILES EXCLUDE REGEX "^/lib/")
endif()

# The package owns the state and log directories with their owners and modes (the certvisor
# group comes from %pre); an erase leaves them when they hold anything, as RPM does with data.
file(MAKE_DIRECTORY "${stage}/var/lib/certvisor" "${stage}/var/log/certvisor")
set(CPACK_RPM_USER_FILELIST
    "%dir %attr(0750,root,certvisor) /var/lib/certvisor"
    "%dir %attr(2750,root,adm) /var/log/certvisor")
foreach(path ${certvisor_conffiles})
  list(APPEND CPACK_RPM_USER_FILELIST "%config(noreplace) /${path}")
endforeach()
