# install() rules: what `cmake --install` (and so the Debian package, see
# packaging/debian/rules) puts where. Included from the top-level
# CMakeLists.txt.
#
#   IMGSYNC_SYSTEMD_UNITDIR   where imgsyncd.service goes ("" = not at all);
#                             the unit names /usr/sbin/imgsyncd, so it is
#                             only right with CMAKE_INSTALL_PREFIX=/usr.
#   IMGSYNC_INSTALL_CONF      install imgsync.conf into SYSCONFDIR/imgsync.
include(GNUInstallDirs)

set(_pkg ${CMAKE_CURRENT_SOURCE_DIR}/packaging)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_unitdir_default "/lib/systemd/system")
else()
  set(_unitdir_default "")
endif()
set(IMGSYNC_SYSTEMD_UNITDIR "${_unitdir_default}" CACHE PATH
  "Where imgsyncd.service is installed (empty: not installed)")
option(IMGSYNC_INSTALL_CONF "Install the configuration file" ON)

install(TARGETS imgsyncd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS imgsyncctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Started by imgsyncd only (thumbnails), never by a user.
install(TARGETS imgsync-thumb RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/imgsync)

# conf/imgsync.conf, the commented defaults, is the installed file too: its
# paths are already the packaged ones. It may hold credentials: never
# world-readable; the package's postinst gives it group imgsync.
if(IMGSYNC_INSTALL_CONF)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/conf/imgsync.conf
    DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/imgsync
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
endif()

if(IMGSYNC_SYSTEMD_UNITDIR)
  install(FILES ${_pkg}/imgsyncd.service DESTINATION ${IMGSYNC_SYSTEMD_UNITDIR})
endif()

install(FILES ${_pkg}/man/imgsyncd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${_pkg}/man/imgsyncctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${_pkg}/man/imgsync.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

install(FILES ${_pkg}/bash-completion/imgsyncctl
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# DOCDIR is share/doc/imgsync (from project()).
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Written separately; installed once it exists (checked at configure time).
if(EXISTS ${_pkg}/iam-policy.json)
  install(FILES ${_pkg}/iam-policy.json DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()
