# Finds every third-party library once; modules link the imported targets.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(Protobuf REQUIRED)

pkg_check_modules(OPUS REQUIRED IMPORTED_TARGET opus)
pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET sndfile)
# libebur128 (libebur128-dev): EBU R128 loudness of uploaded clips (engine).
pkg_check_modules(EBUR128 REQUIRED IMPORTED_TARGET libebur128)
pkg_check_modules(SAMPLERATE REQUIRED IMPORTED_TARGET samplerate)
pkg_check_modules(PORTAUDIO REQUIRED IMPORTED_TARGET portaudio-2.0)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)

if(LOA_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()

# Howard Hinnant's date/tz (libhowardhinnant-date-dev): local-time schedules.
# date::date-tz is the compiled tz library; its target carries USE_OS_TZDB=1,
# so it reads the system tzdata under /usr/share/zoneinfo (no download).
find_package(date CONFIG REQUIRED)
