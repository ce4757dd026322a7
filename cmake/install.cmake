# What `cmake --install` and `cpack -G DEB` put on a machine, in two components:
#   read   captcha-ocr-read and captcha-ocr-serve, libcaptcha_ocr.so (the reading library: core
#          and engine), the public headers, the bundled model, the CMake package
#          (find_package(captcha_ocr) -> captcha_ocr::reader), captcha-ocr.pc and the Python
#          package; no LibTorch.
#   train  captcha-ocr (every command) and libcaptcha_ocr_train.so (captcha_ocr::train).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The shared libraries are the static ones' objects, whole; CMake wants a source of their own.
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/generated/shared_library.cpp
     "// The shared libraries are made of the static libraries' objects (see cmake/install.cmake).\n")

add_library(captcha_ocr_reader SHARED ${CMAKE_CURRENT_BINARY_DIR}/generated/shared_library.cpp)
target_link_libraries(captcha_ocr_reader
  PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,captcha_engine,captcha_core>"
  PUBLIC nlohmann_json::nlohmann_json Threads::Threads)
target_include_directories(captcha_ocr_reader INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# captcha_engine's own link to captcha_core, whole as well.
set_property(TARGET captcha_ocr_reader PROPERTY LINK_LIBRARY_OVERRIDE_captcha_core WHOLE_ARCHIVE)
set_target_properties(captcha_ocr_reader PROPERTIES OUTPUT_NAME captcha_ocr EXPORT_NAME reader
                      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
install(TARGETS captcha_ocr_reader EXPORT captcha_ocr_reader_targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT read NAMELINK_COMPONENT read)
install(EXPORT captcha_ocr_reader_targets NAMESPACE captcha_ocr:: COMPONENT read
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/captcha_ocr)

if(CAPTCHA_WITH_TORCH)
  # The reading library's symbols come from libcaptcha_ocr.so: linked right after the trainer's
  # objects, it resolves their references before captcha_core's archive could (--as-needed
  # keeps a shared library only where something before it needs it).
  add_library(captcha_ocr_train SHARED ${CMAKE_CURRENT_BINARY_DIR}/generated/shared_library.cpp)
  target_link_libraries(captcha_ocr_train PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,captcha_torch>"
                        PUBLIC captcha_ocr_reader)
  set_target_properties(captcha_ocr_train PROPERTIES EXPORT_NAME train
                        VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  install(TARGETS captcha_ocr_train EXPORT captcha_ocr_train_targets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT train NAMELINK_COMPONENT train)
  install(EXPORT captcha_ocr_train_targets NAMESPACE captcha_ocr:: COMPONENT train
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/captcha_ocr)
  install(TARGETS captcha-ocr RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT train)
  install(TARGETS captcha-ocr-read captcha-ocr-serve RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT read)
else()
  install(TARGETS captcha-ocr RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT read)
endif()

install(DIRECTORY include/captcha DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT read)
set(CAPTCHA_MODEL_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/captcha-ocr/models)
install(FILES models/general.safetensors models/README.md DESTINATION ${CAPTCHA_MODEL_INSTALL_DIR} COMPONENT read)

configure_package_config_file(cmake/captcha_ocrConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/generated/captcha_ocrConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/captcha_ocr
  PATH_VARS CAPTCHA_MODEL_INSTALL_DIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/generated/captcha_ocrConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/generated/captcha_ocrConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/generated/captcha_ocrConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/captcha_ocr COMPONENT read)

# pkg-config: the prefix is found from the .pc file's own place, so that an installed tree may move.
file(RELATIVE_PATH CAPTCHA_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(cmake/captcha-ocr.pc.in ${CMAKE_CURRENT_BINARY_DIR}/generated/captcha-ocr.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/generated/captcha-ocr.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT read)

# cpack -G DEB: captcha-ocr (read) and captcha-ocr-train (train), dependencies from the
# binaries' shared libraries (dpkg-shlibdeps).
set(CPACK_PACKAGE_NAME captcha-ocr)
set(CPACK_PACKAGE_VENDOR "captcha-ocr")
set(CPACK_PACKAGE_CONTACT "captcha-ocr developers <captcha-ocr@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Read text CAPTCHAs with a CRNN: command-line tool, HTTP service, C++ and Python library")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL read)
if(CAPTCHA_WITH_TORCH)
  list(APPEND CPACK_COMPONENTS_ALL train)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libcaptcha_ocr.so, which the training package's library loads, is the reading package's (its
# dependency is declared below).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR})
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_READ_PACKAGE_NAME captcha-ocr)
set(CPACK_DEBIAN_READ_PACKAGE_RECOMMENDS "python3 (>= 3.11), python3 (<< 3.12), nlohmann-json3-dev")
set(CPACK_DEBIAN_READ_DESCRIPTION "Read text CAPTCHAs with a CRNN (reading only)
 captcha-ocr-read (predict, eval, bench, export, serve), the reading library libcaptcha_ocr
 with its headers, CMake package and pkg-config file, the Python package captcha_ocr and the
 bundled general model. No LibTorch.")
set(CPACK_DEBIAN_TRAIN_PACKAGE_NAME captcha-ocr-train)
set(CPACK_DEBIAN_TRAIN_PACKAGE_DEPENDS "captcha-ocr (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_TRAIN_DESCRIPTION "Train CAPTCHA readers with LibTorch
 captcha-ocr (every command, train and generate among them) and libcaptcha_ocr_train.")
include(CPack)
