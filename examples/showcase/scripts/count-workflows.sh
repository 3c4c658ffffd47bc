# Count the workflow files of this workspace. No `#!` line: Strøm runs it with `sh`.
# The step runs in a working copy of the workspace, so relative paths work.
count=$(find .workflows -name '*.yaml' | wc -l | tr -d ' ')
echo "found $count workflow files"
echo "OUTPUT: {\"workflow_files\": $count}"
