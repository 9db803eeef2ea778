# Warning flags shared by every Loa target: call loa_target_warnings(target).
function(loa_target_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Wunused -Woverloaded-virtual -Wconversion -Wsign-conversion
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
  if(LOA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(LOA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(LOA_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# loa_add_module(NAME <name> [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per top-level module folder: <name>/src/*.cpp with public
# headers under <name>/include/loa/<name>/. Sources are globbed so that adding a
# file needs no edit here.
function(loa_add_module)
  cmake_parse_arguments(M "" "NAME" "PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  add_library(loa_${M_NAME} STATIC ${_srcs})
  add_library(loa::${M_NAME} ALIAS loa_${M_NAME})
  target_include_directories(loa_${M_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                           PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(loa_${M_NAME} PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  loa_target_warnings(loa_${M_NAME})
endfunction()
