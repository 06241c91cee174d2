#!/usr/bin/env bash
# Starts a real S3 server on loopback for the media tests: versitygw serving a POSIX folder, with
# SigV4 signature checks. Installs it first when it is missing. Idempotent: when something already
# answers on the port, it only prints the settings. The tests create their bucket themselves.
#
#   eval "$(scripts/s3-test-server.sh)"     # exports NERUTALK_TEST_S3_URL
#
# Settings (environment): NERUTALK_S3_TEST_ADDR (127.0.0.1:7070), NERUTALK_S3_TEST_DIR
# (/tmp/nerutalk-s3: objects, pid and log), VERSITYGW_VERSION (v1.8.0).
set -euo pipefail

addr="${NERUTALK_S3_TEST_ADDR:-127.0.0.1:7070}"
dir="${NERUTALK_S3_TEST_DIR:-/tmp/nerutalk-s3}"
version="${VERSITYGW_VERSION:-v1.8.0}"
access="nerutalk-test"
secret="nerutalk-test-secret-key"
bucket="nerutalk-test"
host="${addr%:*}"
port="${addr##*:}"

up() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if ! up; then
  bin="$(command -v versitygw || true)"
  if [ -z "$bin" ]; then
    gobin="$(go env GOBIN)"
    bin="${gobin:-$(go env GOPATH)/bin}/versitygw"
    if [ ! -x "$bin" ]; then
      echo "installing versitygw $version" >&2
      GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2
    fi
  fi
  mkdir -p "$dir/root"
  ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" \
    nohup "$bin" --port "$addr" --quiet posix "$dir/root" >"$dir/versitygw.log" 2>&1 &
  echo $! >"$dir/versitygw.pid"
  for _ in $(seq 1 100); do up && break; sleep 0.1; done
  if ! up; then
    echo "FATAL: versitygw does not answer on $addr; log: $dir/versitygw.log" >&2
    cat "$dir/versitygw.log" >&2 || true
    exit 1
  fi
  echo "versitygw $version serving $dir/root on $addr (pid $(cat "$dir/versitygw.pid"))" >&2
fi
echo "export NERUTALK_TEST_S3_URL=http://$access:$secret@$addr/$bucket"
