# Packaging: the .deb and the .rpm, made by CPack from the install rules of CMakeLists.txt and
# the files below. scripts/package.sh is the one command (README, "Packages"); it configures a
# build of its own as a distribution would:
#
#   -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCERTVISOR_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr
#   -DCMAKE_INSTALL_SYSCONFDIR=/etc -DCERTVISOR_SYSTEMD_UNITDIR=/lib/systemd/system
#
# then runs cpack -G "DEB;RPM". What differs between the two formats is done on CPack's staging
# tree by packaging/cpack/deb.cmake and rpm.cmake (CPACK_PRE_BUILD_SCRIPTS, chosen per generator
# in packaging/cpack/project-config.cmake), so one build serves both.

set(CERTVISOR_PACKAGE_RELEASE "1" CACHE STRING
    "The packages' release: the Debian revision and the RPM Release")
set(CERTVISOR_PACKAGE_CONTACT "certvisor maintainers <maintainers@certvisor.example>" CACHE STRING
    "The packages' maintainer (Maintainer: and Packager:)")

# What a packaged install holds beyond the programs, configuration, unit and man pages.
install(FILES docs/operations.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The persistent directories (root:certvisor 0750 state, root:adm 2750 logs), made again at
# boot if removed, and the account the services run as. systemd reads both under /usr/lib.
install(FILES packaging/tmpfiles.d/certvisor.conf DESTINATION lib/tmpfiles.d)
install(FILES packaging/sysusers.d/certvisor.conf DESTINATION lib/sysusers.d)
# The web console's files, once the tree has them.
if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/services/cm/www)
  install(DIRECTORY services/cm/www/ DESTINATION ${CERTVISOR_CONSOLEDIR})
endif()

# The Debian changelog of this build: one entry for this version and release, dated by
# SOURCE_DATE_EPOCH when set (scripts/package.sh sets it to the last commit's time).
string(TIMESTAMP CERTVISOR_PACKAGE_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
string(TIMESTAMP CERTVISOR_RPM_DATE "%a %b %d %Y" UTC)
set(CERTVISOR_DEB_VERSION "${PROJECT_VERSION}-${CERTVISOR_PACKAGE_RELEASE}")
configure_file(packaging/deb/changelog.in ${CMAKE_BINARY_DIR}/packaging/changelog.Debian @ONLY)

set(CPACK_PACKAGE_NAME certvisor)
set(CPACK_PACKAGE_VENDOR "certvisor")
set(CPACK_PACKAGE_CONTACT "${CERTVISOR_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "node agent for TLS certificates, TLS policy and service supervision")
# Wrapped by hand: CPack copies the lines into the control file as they are.
set(CPACK_PACKAGE_DESCRIPTION
    "certvisord runs on every node of a database platform. It supervises the node's
TLS services (admin console, REST API, proxy, Replica Of syncer, discovery,
metrics exporter, Redis shards) in dependency order, with readiness over
systemd's notify protocol. It owns their certificates (generated, validated,
stored, rotated before they expire) and the TLS policy, renders each
service's TLS configuration, and applies a change by reloading or restarting
exactly the services it affects, rolling back if one does not come up.
certvisorctl drives it.")
# The binaries are stripped. (CPack 3.25's -dbgsym .ddeb lists its files in md5sums under the
# staging directory's path, and its debuginfo RPM wants the sources at a path longer than
# /usr/src/debug/...: neither is shipped.)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_GENERATOR "DEB;RPM")
set(CPACK_SOURCE_GENERATOR "")
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_SOURCE_DIR}/packaging/cpack/project-config.cmake)
# For packaging/cpack/*.cmake, which run inside CPack (it keeps every CPACK_* variable).
set(CPACK_CERTVISOR_SOURCE_DIR ${CMAKE_SOURCE_DIR})
set(CPACK_CERTVISOR_BINARY_DIR ${CMAKE_BINARY_DIR})

# Debian: certvisor_<version>-<release>_<arch>.deb.
set(CPACK_DEBIAN_PACKAGE_NAME certvisor)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${CERTVISOR_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser for postinst; redis-server for the shard the shipped conf.d runs (10-redis-db1.conf):
# Redis 7.0 or later, whose CONFIG SET takes several tls-* settings at once, all or none, which
# is how certvisor-redis-reload changes the shard's TLS in place.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, redis-server (>= 5:7.0)")
# etcd only for a cluster on etcd (certvisor.conf's cluster section, conf.d/80-etcd.conf): a
# single node runs none.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "etcd-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# conffiles is written by packaging/cpack/deb.cmake: every file the package puts under /etc.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/deb/postinst ${CMAKE_SOURCE_DIR}/packaging/deb/prerm
    ${CMAKE_SOURCE_DIR}/packaging/deb/postrm ${CMAKE_BINARY_DIR}/packaging/deb/conffiles)

# RPM: certvisor-<version>-<release>.<arch>.rpm.
set(CPACK_RPM_PACKAGE_NAME certvisor)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE "${CERTVISOR_PACKAGE_RELEASE}")
set(CPACK_RPM_PACKAGE_LICENSE "LicenseRef-certvisor-unreleased")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_PACKAGE_REQUIRES "redis >= 7.0")
set(CPACK_RPM_PACKAGE_REQUIRES_PRE "shadow-utils")
set(CPACK_RPM_PACKAGE_REQUIRES_POST "systemd")
set(CPACK_RPM_PACKAGE_REQUIRES_PREUN "systemd")
set(CPACK_RPM_PACKAGE_REQUIRES_POSTUN "systemd")
set(CPACK_RPM_PRE_INSTALL_SCRIPT_FILE ${CMAKE_SOURCE_DIR}/packaging/rpm/pre.sh)
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${CMAKE_SOURCE_DIR}/packaging/rpm/post.sh)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${CMAKE_SOURCE_DIR}/packaging/rpm/preun.sh)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${CMAKE_SOURCE_DIR}/packaging/rpm/postun.sh)
set(CPACK_RPM_CHANGELOG_FILE ${CMAKE_BINARY_DIR}/packaging/changelog.rpm)
configure_file(packaging/rpm/changelog.in ${CMAKE_BINARY_DIR}/packaging/changelog.rpm @ONLY)
# Directories that other packages (filesystem, systemd) own.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/sbin /usr/libexec /usr/lib/systemd /usr/lib/systemd/system /usr/lib/tmpfiles.d
    /usr/lib/sysusers.d /usr/share/man /usr/share/man/man5 /usr/share/man/man8 /var /var/lib
    /var/log)

include(CPack)
