#!/usr/bin/env bash
# Checks a bash completion script made by scripts/gen_completion.sh (tests/core/test_cli_man.c):
#   bash tests/core/check_completion.sh BIN COMPLETION SRC_DIR
# - `mbsr <TAB>` offers every command of the command table (`BIN --help`);
# - `mbsr <cmd> --<TAB>` offers exactly the long options of the getopt table in
#   SRC_DIR/src/cli/cmd_<cmd>.c (+ --quiet/--threads of MBSR_CLI_COMMON_OPTS, --volume of
#   MBSR_CLI_VOLUME_OPT), a renamed flag by its
#   new name (`BIN --renamed`), without the test hook --inject-fail;
# - flag values and literal first arguments: upsample --interp, train --arch, stats <test>.
# Prints what differs and exits 1; exits 0 when all agree.
set -uo pipefail
bin=$1 comp=$2 src=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# shellcheck disable=SC1090
source "$comp" || { echo "cannot source $comp"; exit 1; }
words() { # the completions of the command line "$@" (the last word is being completed)
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMPREPLY=()
  _mbsr
  printf '%s\n' "${COMPREPLY[@]}" | sort -u
}
fail=0
cmds=$("$bin" --help | sed -n '/^commands:/,$p' | sed -n 's/^  \([a-z][a-z0-9_-]*\)  .*$/\1/p')
[ "$(echo $cmds | wc -w)" -ge 18 ] || { echo "only $(echo $cmds | wc -w) commands in '$bin --help'"; fail=1; }
top=$(words mbsr "")
for c in $cmds; do
  grep -qx -- "$c" <<<"$top" || { echo "mbsr <TAB> does not offer '$c'"; fail=1; }
done
renamed=$("$bin" --renamed)
for c in $cmds; do
  f="$src/src/cli/cmd_$c.c"
  [ -f "$f" ] || { echo "no $f"; fail=1; continue; }
  accepted=$({
    grep -o '{"[a-z0-9-]*", *[a-z_]*argument' "$f" | sed 's/{"\([^"]*\)".*/--\1/'
    if grep -q MBSR_CLI_COMMON_OPTS "$f"; then printf -- '--quiet\n--threads\n'; fi
    if grep -q MBSR_CLI_VOLUME_OPT "$f"; then printf -- '--volume\n'; fi
  } | awk -F'\t' -v c="$c" -v r="$renamed" 'BEGIN { n = split(r, L, "\n"); for (i = 1; i <= n; i++) { split(L[i], x, "\t"); if (x[1] == c) nw[x[2]] = x[3] } }
        { print ($0 in nw) ? nw[$0] : $0 }' | grep -v -x -e '--help' -e '--inject-fail' | sort -u)
  offered=$(words mbsr "$c" -- | grep -v -x -- '--help')
  if [ "$accepted" != "$offered" ]; then
    echo "mbsr $c --<TAB>: offered and accepted options differ (< accepted by cmd_$c.c, > offered):"
    diff <(echo "$accepted") <(echo "$offered") | grep '^[<>]'
    fail=1
  fi
done
check() { # WANT WORDS...: the completions of WORDS must be exactly WANT (space-separated, sorted)
  local want=$1 got
  shift
  got=$(words "$@" | tr '\n' ' ')
  [ "$got" = "$want " ] || { echo "completing '$*': got '$got', want '$want'"; fail=1; }
}
check "bspline keys linear" mbsr upsample x --interp ""
check "ccnn gan resnet" mbsr train --arch ""
check "corr ttest welch" mbsr stats ""
check "--interp" mbsr upsample --int
check "--norm-percentiles" mbsr normalize --norm
exit $fail
