#!/usr/bin/env bash
# Destroys the dojo's kind cluster.
set -euo pipefail
kind delete cluster --name ebb-dojo
