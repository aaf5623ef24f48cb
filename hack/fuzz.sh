#!/usr/bin/env bash
# hack/fuzz.sh runs every Fuzz* target of every package in the repository —
# pkg/, cmd/, internal/, test/ and the separate modules under hack/ — one
# after the other. `make fuzz` calls it.
#
#   FUZZTIME   time per target (go test -fuzztime), default 20s
#   FUZZTOTAL  a total instead (e.g. 60m): divided evenly over the targets;
#              it wins over FUZZTIME
#   GO         the go command
#
# Each target's corpus of new interesting inputs stays in the Go build cache
# (go env GOCACHE)/fuzz; failing inputs are written to the package's
# testdata/fuzz/<target>/, as go test does. The script ends with a summary of
# the targets run and the size of each one's cache corpus.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}

# Directories with a Go test file declaring a fuzz target.
mapfile -t dirs < <(grep -rlE --include='*_test.go' --exclude-dir=.git --exclude-dir=bin --exclude-dir=testdata \
	'^func Fuzz[A-Za-z0-9_]*\(' . | xargs -r -n1 dirname | sort -u)
if [ ${#dirs[@]} -eq 0 ]; then
	echo 'fuzz: no Fuzz* targets'
	exit 0
fi

# modroot prints the directory of the go.mod that owns directory $1.
modroot() {
	local d=$1
	while [ ! -f "$d/go.mod" ]; do d=$(dirname "$d"); done
	echo "$d"
}

# Every (module, package, target), listed by go test itself.
targets=()
for d in "${dirs[@]}"; do
	m=$(modroot "$d")
	rel=${d#"$m"}
	pkg=./${rel#/}
	list=$(cd "$m" && $GO test -list '^Fuzz' "$pkg")
	for f in $(grep -E '^Fuzz' <<<"$list" || true); do
		targets+=("$m $pkg $f")
	done
done
echo "fuzz: ${#targets[@]} targets"

per=$FUZZTIME
if [ -n "${FUZZTOTAL:-}" ]; then
	case $FUZZTOTAL in
	*h) total=$(( ${FUZZTOTAL%h} * 3600 )) ;;
	*m) total=$(( ${FUZZTOTAL%m} * 60 )) ;;
	*s) total=${FUZZTOTAL%s} ;;
	*) echo "fuzz: FUZZTOTAL=$FUZZTOTAL: want a whole number of h, m or s (e.g. 60m)" >&2; exit 2 ;;
	esac
	per="$(( total / ${#targets[@]} ))s"
fi

cache=$($GO env GOCACHE)/fuzz
for t in "${targets[@]}"; do
	read -r m pkg f <<<"$t"
	echo "== fuzz $m $pkg $f for $per"
	(cd "$m" && $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$per" "$pkg")
done

echo "== fuzz summary (corpus entries in $cache)"
for t in "${targets[@]}"; do
	read -r m pkg f <<<"$t"
	path=$(cd "$m" && $GO list -f '{{.ImportPath}}' "$pkg")
	n=$(find "$cache/$path/$f" -type f 2>/dev/null | wc -l || true)
	printf '  %-50s %-28s %6d\n' "$path" "$f" "$n"
done
