#!/usr/bin/env bash
# Checks what deploy/ ships for operators:
#   1. promtool check rules: the alerting rules under deploy/prometheus
#      are valid (the *_test.yml files are their unit tests, not rules);
#   2. promtool test rules: each alert fires on the series of a sick node,
#      after its for: duration, and not on a healthy one;
#   3. go test ./deploy: the Grafana dashboard is a valid model reading
#      its data source from a variable, its expressions parse (promtool
#      again), and every metric that it and the rules name is exported by
#      a real Zombi node (Postgres, S3, --cluster) that took events.
# promtool comes from scripts/install-promtool.sh (cached). Step 3 uses
# the test services that ZOMBI_TEST_* name, or starts its own.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool="$(scripts/install-promtool.sh | tail -n 1)"
echo "promtool: $promtool"

rules=()
for f in deploy/prometheus/*.yml; do
	[[ "$f" == *_test.yml ]] || rules+=("$f")
done
"$promtool" check rules "${rules[@]}"
"$promtool" test rules deploy/prometheus/*_test.yml
ZOMBI_PROMTOOL="$promtool" go test -count=1 ./deploy
