#!/bin/sh
# Runs inside the container, in the working copy mounted at /workspace.
set -e
echo "$INPUT_GREETING (seen in $(pwd))"
files=$(find . -type f | wc -l)
echo "the workspace holds $files files"
echo "OUTPUT: {\"files\": $files}"
