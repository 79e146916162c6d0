# Sourced by test.sh and vm-test.sh so that both build the test binaries
# with the same settings (else vm-test.sh would rebuild them all).
#
# Disk: a clean run wrote ~7.4 GB into target/ with cargo's dev defaults,
# 1.9 GB of it incremental caches that a one-shot run never reuses and most
# of the rest debug info; CI once ran out of space mid-run. Line tables keep
# backtraces readable. The scratch crates that tests build with cargo
# inherit these through the environment.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}
