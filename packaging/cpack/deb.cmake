# Runs inside CPack before the .deb is made (CPACK_PRE_BUILD_SCRIPTS): Debian's additions to the
# staging tree.
include(${CPACK_CERTVISOR_SOURCE_DIR}/packaging/cpack/common.cmake)

# The copyright file (machine-readable) and the changelog, compressed, in the package's doc
# directory, as policy 12.5 and 12.7 ask.
set(doc "${stage}/usr/share/doc/certvisor")
certvisor_install_file("${CPACK_CERTVISOR_SOURCE_DIR}/packaging/deb/copyright" "${doc}/copyright")
certvisor_install_file("${CPACK_CERTVISOR_BINARY_DIR}/packaging/changelog.Debian"
                       "${doc}/changelog.Debian")
certvisor_gzip("${doc}/changelog.Debian")

# Lintian's overrides, each with its reason.
set(overrides "${CPACK_CERTVISOR_SOURCE_DIR}/packaging/deb/lintian-overrides")
if(EXISTS "${overrides}")
  certvisor_install_file("${overrides}" "${stage}/usr/share/lintian/overrides/certvisor")
endif()

# conffiles, named in CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA.
list(TRANSFORM certvisor_conffiles PREPEND "/")
list(JOIN certvisor_conffiles "\n" text)
file(WRITE "${CPACK_CERTVISOR_BINARY_DIR}/packaging/deb/conffiles" "${text}\n")
