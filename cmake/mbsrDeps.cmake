# mbsr's dependencies as targets, found by standard CMake means (CMAKE_PREFIX_PATH, pkg-config,
# environment modules): used by mbsr's own build and, installed, by mbsrConfig.cmake for consumers.
#   MPI::MPI_C, OpenMP::OpenMP_C, mbsr::hdf5 (PARALLEL HDF5), mbsr::nifti (nifti_clib 2 + znz),
#   mbsr::teem, PkgConfig::GSL FFTW3F ZLIB TIFF CURL LIBZIP YAML JANSSON CRYPTO.
# Hints: HDF5_ROOT / HDF5_DIR for HDF5, NIFTI_ROOT and TEEM_ROOT for the two libraries without
# CMake or pkg-config files, PKG_CONFIG_PATH for the rest.
include_guard(GLOBAL)
find_package(PkgConfig REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(OpenMP REQUIRED COMPONENTS C)
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "mbsr needs PARALLEL HDF5 (Debian: libhdf5-openmpi-dev; modules: an MPI build of hdf5); "
                      "found a serial build at ${HDF5_C_INCLUDE_DIRS}")
endif()
if(NOT TARGET mbsr::hdf5)
  add_library(mbsr::hdf5 INTERFACE IMPORTED)
  set_target_properties(mbsr::hdf5 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${HDF5_C_INCLUDE_DIRS}"
    INTERFACE_COMPILE_DEFINITIONS "${HDF5_C_DEFINITIONS}" INTERFACE_LINK_LIBRARIES "${HDF5_C_LIBRARIES};MPI::MPI_C")
endif()
# nifti_clib: Debian's NIFTIConfig.cmake is broken (it points at /usr/lib/libznz.so.3.0.0), so the
# header and the two libraries are found directly.
find_path(MBSR_NIFTI_INCLUDE_DIR nifti2_io.h HINTS ${NIFTI_ROOT} ENV NIFTI_ROOT PATH_SUFFIXES include/nifti nifti REQUIRED)
find_library(MBSR_NIFTI2_LIBRARY nifti2 HINTS ${NIFTI_ROOT} ENV NIFTI_ROOT PATH_SUFFIXES lib lib64 REQUIRED)
find_library(MBSR_ZNZ_LIBRARY znz HINTS ${NIFTI_ROOT} ENV NIFTI_ROOT PATH_SUFFIXES lib lib64 REQUIRED)
if(NOT TARGET mbsr::nifti)
  add_library(mbsr::nifti INTERFACE IMPORTED)
  set_target_properties(mbsr::nifti PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${MBSR_NIFTI_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${MBSR_NIFTI2_LIBRARY};${MBSR_ZNZ_LIBRARY}")
endif()
find_path(MBSR_TEEM_INCLUDE_DIR teem/nrrd.h HINTS ${TEEM_ROOT} ENV TEEM_ROOT PATH_SUFFIXES include REQUIRED)
find_library(MBSR_TEEM_LIBRARY teem HINTS ${TEEM_ROOT} ENV TEEM_ROOT PATH_SUFFIXES lib lib64 REQUIRED)
if(NOT TARGET mbsr::teem)
  add_library(mbsr::teem INTERFACE IMPORTED)
  set_target_properties(mbsr::teem PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${MBSR_TEEM_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${MBSR_TEEM_LIBRARY}")
endif()
foreach(pc GSL:gsl FFTW3F:fftw3f ZLIB:zlib TIFF:libtiff-4 CURL:libcurl LIBZIP:libzip YAML:yaml-0.1 JANSSON:jansson CRYPTO:libcrypto)
  string(REPLACE ":" ";" p "${pc}")
  list(GET p 0 var)
  list(GET p 1 mod)
  if(NOT TARGET PkgConfig::${var})
    pkg_check_modules(${var} REQUIRED IMPORTED_TARGET ${mod})
  endif()
endforeach()
