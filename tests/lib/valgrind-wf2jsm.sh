#!/bin/sh
# Runs the plain (non-sanitized) wf2jsm under valgrind's memcheck; any
# memory error or definite leak makes the run exit 99.
here=$(cd "$(dirname "$0")/../.." && pwd)
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$here/bin/wf2jsm" "$@"
