#!/bin/sh
# layers.sh — the structure of the library, measured from the code.
#   sh scripts/layers.sh          check that no folder includes from a folder
#                                 above it (exit 1 and name the include if one does)
#   sh scripts/layers.sh --stats  also print lines per folder, the include graph
#                                 between folders and the 12 longest functions
# The layers, bottom to top (docs/ARCHITECTURE.md). A file may include
# headers of its own folder and of folders ranked strictly lower; folders
# of equal rank are independent of each other.
set -eu
cd "$(dirname "$0")/.."

rank() {
    case "$1" in
        include/dcm) echo 0 ;;
        dcm/core | vl) echo 1 ;;
        models) echo 2 ;;
        io) echo 3 ;;
        dcm) echo 4 ;;
        dcm/report) echo 5 ;;
        dcm/cli) echo 6 ;;
        *) echo "" ;;
    esac
}

SRC=$(ls include/dcm/*.h dcm/core/*.[ch] vl/*.[ch] models/*.[ch] io/*.[ch] dcm/*.[ch] \
         dcm/report/*.[ch] dcm/cli/*.[ch] 2>/dev/null)

# "from-folder to-folder file header" for every project include
edges() {
    for f in $SRC; do
        from=$(dirname "$f")
        grep -o '^#include "[^"]*"' "$f" | sed 's/^#include "//; s/"$//' | while read -r h; do
            if [ -f "$h" ]; then to=$(dirname "$h")
            elif [ -f "include/$h" ]; then to=$(dirname "include/$h")
            else to=$from; fi
            echo "$from $to $f $h"
        done
    done
}

bad=0
E=$(edges)
echo "$E" | { while read -r from to f h; do
    [ -n "$from" ] || continue
    [ "$from" = "$to" ] && continue
    rf=$(rank "$from"); rt=$(rank "$to")
    if [ -z "$rf" ] || [ -z "$rt" ]; then
        echo "layers: $f includes $h: folder $from or $to has no layer (scripts/layers.sh)" >&2
        bad=1
    elif [ "$rt" -ge "$rf" ]; then
        echo "layers: $f includes $h, but $to is not below $from" >&2
        bad=1
    fi
done; exit $bad; } || bad=1

if [ "${1:-}" = "--stats" ]; then
    echo "lines per folder (.c and .h):"
    for d in include/dcm dcm/core vl models io dcm dcm/report dcm/cli tests fuzz; do
        n=$(cat $d/*.[ch] 2>/dev/null | wc -l)
        printf '  %-12s %6d\n' "$d" "$n"
    done
    echo "include graph between folders (count of #include lines):"
    echo "$E" | awk '$1 != $2 && NF == 4 {print "  " $1 " -> " $2}' | sort | uniq -c
    echo "longest functions (lines from signature to closing brace):"
    # functions are written with their name at column 0 and braces at column 0
    for f in $SRC; do
        case "$f" in *.c) ;; *) continue ;; esac
        awk -v file="$f" '
            /^[A-Za-z_][A-Za-z0-9_ \*]*\(/ && !/;[ \t]*$/ { name = $0; start = NR; next }
            /^\{/ && start { infn = 1; next }
            /^\}/ && infn { sub(/\(.*/, "", name); n = split(name, w, /[ \*]+/);
                            printf "%6d  %s:%d %s\n", NR - start + 1, file, start, w[n];
                            infn = 0; start = 0 }' "$f"
    done | sort -rn | head -12
fi
if [ $bad -ne 0 ]; then
    echo "layers: the include graph breaks the layering (see docs/ARCHITECTURE.md)" >&2
    exit 1
fi
echo "layers: ok (no folder includes from a folder above it)"
