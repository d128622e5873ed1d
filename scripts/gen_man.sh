#!/usr/bin/env bash
# Generate the man pages of mbsr from the CLI's own help texts (Debian's help2man):
#   bash scripts/gen_man.sh BIN OUTDIR        e.g. bash scripts/gen_man.sh build/bin/mbsr build/share/man/man1
# Writes OUTDIR/mbsr.1 (from `BIN --help`) and OUTDIR/mbsr-<command>.1 for every command that
# `BIN --help` lists (from `BIN <command> --help`), each with a SEE ALSO section. CMake runs it after
# building the CLI and installs the pages into <prefix>/share/man/man1 (CMakeLists.txt, end).
# Read one with `man -l OUTDIR/mbsr-apply.1`, or `man mbsr-apply` once installed.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: bash scripts/gen_man.sh BIN OUTDIR   (e.g. build/bin/mbsr build/share/man/man1)" >&2
  exit 2
fi
bin=$1 out=$2
command -v help2man >/dev/null || { echo "gen_man.sh: help2man not found (Debian: apt-get install help2man)" >&2; exit 1; }
[ -x "$bin" ] || { echo "gen_man.sh: '$bin' is not an executable" >&2; exit 1; }
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
export LC_ALL=C OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=$("$bin" --version | awk '{print $2}')
# the command table: "  <name>  <description>[ [MPI]]" lines after "commands:" in `mbsr --help`
table=$("$bin" --help | sed -n '/^commands:/,$p' | sed -n 's/^  \([a-z][a-z0-9_-]*\)  *\(.*\)$/\1\t\2/p')
[ -n "$table" ] || { echo "gen_man.sh: no commands found in '$bin --help'" >&2; exit 1; }

# help2man reads a synopsis from a first line "Usage: ..."; the CLI writes "usage:"
wrapper() { # NAME ARGS...: an executable $tmp/NAME that runs BIN ARGS "$@"
  local name=$1
  shift
  printf '#!/bin/sh\n"%s" %s "$@" | sed "1s/^usage:/Usage:/"\n' "$bin" "$*" >"$tmp/$name"
  chmod +x "$tmp/$name"
}
see_also=$(while IFS=$'\t' read -r name desc; do printf '.BR mbsr-%s (1),\n' "$name"; done <<<"$table")
{
  printf '[DESCRIPTION]\nmbsr is a toolkit for 3-D super-resolution of mouse-brain MRI (Liang & Zhang 2023) for HPC\n'
  printf 'clusters: one command per step, each documented in its own page, mbsr-\\fIcommand\\fR(1).\n'
  printf 'Log lines go to stderr; machine output (JSON, tables) to stdout.\n'
  printf '[SEE ALSO]\n%s\nand docs/user/cli.md (the vocabulary of the flags) in the source tree.\n' "$see_also"
} >"$tmp/mbsr.h2m"
wrapper mbsr ""
help2man --no-info --no-discard-stderr --version-string="$version" --source="mbsr $version" --section=1 \
  --name="3-D super-resolution of mouse brain MRI" --include="$tmp/mbsr.h2m" --output="$out/mbsr.1" "$tmp/mbsr"
n=1
while IFS=$'\t' read -r name desc; do
  desc=${desc% \[MPI\]}
  printf '[SEE ALSO]\n.BR mbsr (1)\nand docs/user/cli.md in the source tree.\n' >"$tmp/$name.h2m"
  wrapper "mbsr-$name" "$name"
  help2man --no-info --no-discard-stderr --version-string="$version" --source="mbsr $version" --section=1 \
    --name="$desc" --include="$tmp/$name.h2m" --output="$out/mbsr-$name.1" "$tmp/mbsr-$name"
  n=$((n + 1))
done <<<"$table"
echo "gen_man.sh: $n man pages -> $out"
