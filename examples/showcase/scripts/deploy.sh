#!/bin/sh
# Pretend to deploy one service. Starts with `#!`, so Strøm executes the file directly.
# Arguments come from the action's `args`; everything else from INPUT_* and STROEM_* variables.
set -eu
service="$1"
version="$2"
echo "deploying $service $version to $INPUT_ENVIRONMENT (step $STROEM_STEP, attempt $STROEM_ATTEMPT)"
echo "authenticating with token $API_TOKEN"   # the secret's value is masked in the log
url="https://$service.$INPUT_ENVIRONMENT.example.com"
echo "OUTPUT: {\"service\": \"$service\", \"url\": \"$url\"}"
