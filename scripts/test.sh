#!/usr/bin/env bash
# The whole test suite on a fresh machine: starts a throw-away PostgreSQL 15 and a local S3 server
# (Garage, built once into ~/.cache/brr-ci), then runs every test of the workspace with cargo-nextest.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -p brr-core     # extra arguments go to `cargo nextest run`
#
# Set BRR_TEST_NO_SERVICES=1 to skip starting PostgreSQL and S3 (their tests then print a notice and
# pass, unless CI is set, where they fail).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${BRR_TEST_NO_SERVICES:-}" ]; then
  eval "$(bash .ci/postgres.sh)"
  eval "$(bash .ci/s3.sh)"
  export BRR_REQUIRE_S3=1
  # brrd reads S3 credentials from the environment: the in-process brrd tests use the test server's.
  export AWS_ACCESS_KEY_ID="$BRR_TEST_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$BRR_TEST_S3_SECRET_KEY"
  export AWS_REGION="$BRR_TEST_S3_REGION"
fi

# Debug builds of dependencies are optimised (see Cargo.toml); tests build once and run in parallel.
cargo nextest run --workspace --no-fail-fast "$@"
