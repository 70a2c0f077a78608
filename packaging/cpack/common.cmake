# Shared by deb.cmake and rpm.cmake, which run inside CPack on its staging tree.

# The staging tree: where the install rules put /usr, /etc and the rest.
set(stage "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")

# Compresses a file as Debian and RPM tools do: gzip -9, no name or time stamp inside.
function(certvisor_gzip path)
  execute_process(COMMAND gzip -9nf "${path}" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "gzip ${path} failed")
  endif()
endfunction()

# Copies a file into the staging tree, mode 0644, making its directory.
function(certvisor_install_file source destination)
  execute_process(COMMAND install -D -m 0644 "${source}" "${destination}" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "cannot install ${source} as ${destination}")
  endif()
endfunction()

# The binaries (stripped by CPACK_STRIP_FILES) lose the compiler's notes too, as dh_strip and
# rpmbuild's brp-strip-comment-note do.
file(GLOB certvisor_binaries "${stage}/usr/sbin/*" "${stage}/usr/libexec/certvisor/*")
foreach(binary ${certvisor_binaries})
  execute_process(COMMAND strip --remove-section=.comment --remove-section=.note "${binary}"
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "strip ${binary} failed")
  endif()
endforeach()

# Man pages are installed compressed (Debian policy 12.1; rpmbuild's brp-compress would do the
# same).
file(GLOB_RECURSE certvisor_man_pages "${stage}/usr/share/man/man*/*.[1-9]")
foreach(page ${certvisor_man_pages})
  certvisor_gzip("${page}")
endforeach()

# Every file under /etc is configuration the administrator may edit, kept across upgrades.
file(GLOB_RECURSE certvisor_conffiles LIST_DIRECTORIES false RELATIVE "${stage}" "${stage}/etc/*")
list(SORT certvisor_conffiles)
if(NOT certvisor_conffiles)
  message(FATAL_ERROR "no configuration files under ${stage}/etc")
endif()
