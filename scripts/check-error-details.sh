#!/usr/bin/env bash
# Checks that Error::detail numbers never collide (base/result.h): every detail enum
# (`enum class *Err : uint16_t`) under src/<module>/ has all its values inside its module's
# range [DetailBase, DetailBase + 1000), no number is used twice in the whole program, and
# no MakeError call passes a bare number other than 0 as the detail. Run by ctest
# (error_details_unique) and by scripts/test.sh through it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Module enumerators in base/result.h order: the index times 1000 is the range's start.
modules=(base crypto signal noise wire net store server client nats)
# Folders that report as a module of their own, not as the module of their parent folder.
declare -A module_of_dir=([store/nats]=nats)
declare -A base_of=()
for i in "${!modules[@]}"; do base_of[${modules[$i]}]=$((i * 1000)); done

fail=0
declare -A seen=()
checked=0
while IFS= read -r file; do
  mod="${file#src/}"
  mod="${mod%%/*}"
  for dir in "${!module_of_dir[@]}"; do
    if [[ "$file" == "src/$dir/"* ]]; then mod=${module_of_dir[$dir]}; fi
  done
  if [ -z "${base_of[$mod]+x}" ]; then
    echo "check-error-details: $file: module '$mod' has no detail range in base/result.h"
    fail=1
    continue
  fi
  lo=${base_of[$mod]}
  hi=$((lo + 1000))
  # One line per enumerator value: "<enum> <name> <value>".
  while read -r enum name value; do
    checked=$((checked + 1))
    if [ "$value" -le "$lo" ] || [ "$value" -ge "$hi" ]; then
      echo "check-error-details: $file: $enum::$name = $value is outside $mod's range $((lo + 1))..$((hi - 1))"
      fail=1
    fi
    if [ -n "${seen[$value]+x}" ]; then
      echo "check-error-details: $file: $enum::$name = $value collides with ${seen[$value]}"
      fail=1
    fi
    seen[$value]="$enum::$name ($file)"
  done < <(awk '
    /enum class [A-Za-z0-9_]*Err : uint16_t/ {
      match($0, /enum class [A-Za-z0-9_]*Err/); enum = substr($0, RSTART + 11, RLENGTH - 11); inside = 1
    }
    inside {
      line = $0; sub(/\/\/.*/, "", line)
      while (match(line, /k[A-Za-z0-9_]+ *= *[0-9]+/)) {
        item = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
        split(item, parts, /[ =]+/); print enum, parts[1], parts[2]
      }
      if ($0 ~ /};/) inside = 0
    }' "$file")
done < <(grep -rlE 'enum class [A-Za-z0-9_]*Err : uint16_t' src --include='*.h' --include='*.cc' | sort)

if grep -rnE 'MakeError\([^,]+, *Module::k[A-Za-z]+, *[1-9][0-9]*,' src apps --include='*.h' --include='*.cc'; then
  echo "check-error-details: a bare detail number above (use the module's detail enum)"
  fail=1
fi
if [ "$checked" -lt 100 ]; then
  echo "check-error-details: found only $checked detail values; the parser is broken"
  fail=1
fi
[ "$fail" -eq 0 ] && echo "check-error-details: ok ($checked detail values, all unique)"
exit "$fail"
