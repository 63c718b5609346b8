# Warning flags shared by every Sotto target (not by system headers).
set(SOTTO_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Wunused -Woverloaded-virtual -Wconversion -Wsign-conversion
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(SOTTO_WERROR)
  list(APPEND SOTTO_WARNINGS -Werror)
endif()

# sotto_target_defaults(<target>): warnings and standard for a first-party target.
function(sotto_target_defaults target)
  target_compile_options(${target} PRIVATE ${SOTTO_WARNINGS})
  target_compile_features(${target} PUBLIC cxx_std_20)
endfunction()
