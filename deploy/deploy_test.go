// Package deploy_test checks the Grafana dashboard and the Prometheus
// alerting rules under deploy/ against the Zombi they are for: the
// dashboard is a Grafana model that reads its data source from a
// variable, every expression parses, and every metric they name is one a
// running Zombi exports, so that renaming a metric fails here instead of
// leaving an empty panel or an alert that can never fire.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/internal/zombitest"
	"gopkg.in/yaml.v3"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

const (
	dashboardPath = "grafana/zombi.json"
	rulesGlob     = "prometheus/*.yml"
	// dsRef is how panels and targets name the data source: the
	// dashboard's datasource variable.
	dsRef = "${datasource}"
)

// The parts of Grafana's dashboard model that the checks read.
type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": ...}
	Datasource *datasource     `json:"datasource"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	GridPos    *gridPos    `json:"gridPos"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"` // a collapsed row's
}

type gridPos struct{ H, W, X, Y int }

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// The parts of a Prometheus rule file that the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// expression is a PromQL expression of the dashboard or the rules, and
// where it is.
type expression struct {
	where string
	expr  string
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// allPanels returns the dashboard's panels, those of collapsed rows
// included.
func allPanels(ps []panel) []panel {
	var all []panel
	for _, p := range ps {
		all = append(all, p)
		all = append(all, allPanels(p.Panels)...)
	}
	return all
}

// grafanaVars are the values the checks give the dashboard's variables,
// as Grafana would interpolate them.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m",
	"${__rate_interval}", "1m",
	"$__interval", "15s",
	"${__interval}", "15s",
	"$__range", "1h",
	"${job}", "zombi",
	"$job", "zombi",
	"${instance}", ".+",
	"$instance", ".+",
)

// labelValues matches a Grafana label_values(selector, label) query.
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// dashboardExpressions returns the PromQL of every target and of every
// query variable (the selector of label_values), interpolated.
func dashboardExpressions(t *testing.T, d dashboard) []expression {
	t.Helper()
	var exprs []expression
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			exprs = append(exprs, expression{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), grafanaVars.Replace(tg.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
			q = obj.Query
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q, want label_values(selector, label)", v.Name, q)
			continue
		}
		exprs = append(exprs, expression{"variable " + v.Name, grafanaVars.Replace(m[1])})
	}
	return exprs
}

// ruleExpressions returns the expression of every rule under
// deploy/prometheus (the *_test.yml files are promtool's unit tests).
func ruleExpressions(t *testing.T) []expression {
	t.Helper()
	files, err := filepath.Glob(rulesGlob)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []expression
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yml") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, expression{fmt.Sprintf("%s rule %s%s", f, r.Alert, r.Record), r.Expr})
			}
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("no rules in %s", rulesGlob)
	}
	return exprs
}

// TestDashboardModel: the dashboard is a Grafana model whose panels have
// unique IDs and a place on the grid, whose queries have an expression
// each, and which reads from the data source its datasource variable
// picks and from the nodes its job and instance variables pick, none
// named in it.
func TestDashboardModel(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("title %q, uid %q, schemaVersion %d: want all three", d.Title, d.UID, d.SchemaVersion)
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("datasource variable %+v, want type datasource and query prometheus", v)
	}
	for _, name := range []string{"job", "instance"} {
		v, ok := vars[name]
		if !ok || v.Type != "query" {
			t.Errorf("no query variable %s", name)
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != dsRef {
			t.Errorf("variable %s reads data source %+v, want %s", name, v.Datasource, dsRef)
		}
	}
	// A node named in an expression instead of selected: instance=
	// anything but a variable.
	fixedInstance := regexp.MustCompile(`instance\s*(=|!=|=~|!~)\s*"[^$]`)
	ids := map[int]string{}
	queries := 0
	for _, p := range allPanels(d.Panels) {
		if p.ID <= 0 {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Title == "" || p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: title or gridPos %+v missing or off the 24-column grid", p.ID, p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != dsRef {
			t.Errorf("panel %d %q reads data source %+v, want %s", p.ID, p.Title, p.Datasource, dsRef)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no targets", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %d %q: refId %q missing or repeated", p.ID, p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %d %q target %s has no expr", p.ID, p.Title, tg.RefID)
			}
			if tg.Datasource != nil && tg.Datasource.UID != dsRef {
				t.Errorf("panel %d %q target %s reads data source %+v, want %s", p.ID, p.Title, tg.RefID, tg.Datasource, dsRef)
			}
			if fixedInstance.MatchString(tg.Expr) {
				t.Errorf("panel %d %q target %s names a node: %s", p.ID, p.Title, tg.RefID, tg.Expr)
			}
			if strings.Contains(tg.Expr, "zombi_") && !strings.Contains(tg.Expr, `job="$job"`) {
				t.Errorf("panel %d %q target %s does not select the job variable: %s", p.ID, p.Title, tg.RefID, tg.Expr)
			}
		}
	}
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
}

// EnvPromtool names the promtool binary that TestExpressionsParse runs
// (scripts/install-promtool.sh installs it). When it is set, the test
// fails without it; when not, the test looks in $ZOMBI_CACHE/bin and
// is skipped if none is there.
const EnvPromtool = "ZOMBI_PROMTOOL"

func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(EnvPromtool); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", EnvPromtool, p, err)
		}
		return p
	}
	cache := os.Getenv("ZOMBI_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "zombi")
	}
	p := filepath.Join(cache, "bin", "promtool")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no promtool at %s: run scripts/install-promtool.sh or set %s", p, EnvPromtool)
	}
	return p
}

// TestExpressionsParse: every expression of the dashboard parses as
// PromQL. Prometheus's own parser is a large module to depend on for one
// test; promtool, which checks the alerting rules anyway, parses rule
// expressions with it, so the dashboard's expressions are written out as
// recording rules and handed to `promtool check rules`.
func TestExpressionsParse(t *testing.T) {
	tool := promtool(t)
	exprs := dashboardExpressions(t, loadDashboard(t))
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	rules := make([]rule, len(exprs))
	for i, e := range exprs {
		rules[i] = rule{Record: fmt.Sprintf("dashboard:expr_%d", i), Expr: e.expr}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "check", "rules", "--lint=none", f).CombinedOutput()
	if err != nil {
		// promtool names the rule: say which panel that is.
		for i, e := range exprs {
			if strings.Contains(string(out), fmt.Sprintf("%q", rules[i].Record)) {
				t.Errorf("%s: %s", e.where, e.expr)
			}
		}
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%d dashboard expressions parse", len(exprs))
}

// TestMetricsExist: every metric the dashboard and the rules name is one
// that a running Zombi exports. The node runs the production shape
// (Postgres, S3, --cluster), where every part that has metrics is on, and
// takes some events, which it commits, before it is scraped; it must also
// have read the cluster's node registry, which the cluster alerts read.
func TestMetricsExist(t *testing.T) {
	exprs := append(dashboardExpressions(t, loadDashboard(t)), ruleExpressions(t)...)
	node := zombitest.StartCluster(t, 1, "--flush-interval", "200ms")[0]
	for i := range 20 {
		zombitest.MustCall(t, 202, "POST", node.URL+"/tables/deploy_events", fmt.Sprintf(`{"payload":"event %d"}`, i))
	}
	zombitest.MustCall(t, 200, "POST", node.URL+"/tables/deploy_events/flush", "")
	exported := scrape(t, node.URL+"/metrics")

	used := map[string][]string{}
	for _, e := range exprs {
		for _, name := range metricNames(e.expr) {
			used[name] = append(used[name], e.where)
		}
	}
	names := make([]string, 0, len(used))
	for name := range used {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !exported[name] {
			t.Errorf("%s is not exported, used by:\n\t%s", name, strings.Join(used[name], "\n\t"))
		}
	}
	if !t.Failed() {
		t.Logf("%d metrics used, all exported: %s", len(names), strings.Join(names, " "))
	}

	// The cluster alerts read the registry as the nodes see it; the
	// metrics above exist from the start at 0, so check that this node
	// reads the registry at all: it sees itself alive.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		alive, ok := gaugeValue(scrapeFamilies(t, node.URL+"/metrics"), "zombi_cluster_nodes", "state", "alive")
		if ok && alive == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zombi_cluster_nodes{state=\"alive\"} = %v (exported: %t), want 1: the node does not read the registry", alive, ok)
		}
	}
}

// gaugeValue returns the value of the gauge name whose label is value.
func gaugeValue(families map[string]*dto.MetricFamily, name, label, value string) (float64, bool) {
	for _, m := range families[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// scrapeFamilies returns the metric families url exports.
func scrapeFamilies(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	body := zombitest.MustCall(t, 200, "GET", url, "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return families
}

// scrape returns the names of the series url exports: each counter's and
// gauge's name, and a histogram's _bucket, _sum and _count.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for name, mf := range scrapeFamilies(t, url) {
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// promqlKeywords are the identifiers of PromQL that are not metric names
// where they stand without a parenthesis after them.
var promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
	"group_left", "group_right", "inf", "nan", "start", "end"}

// groupings are the keywords followed by a parenthesized list of label
// names.
var groupings = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// metricNames returns the metric names expr selects, in order, each once:
// the identifiers outside strings, label matchers ({...}), ranges
// ([...]) and label lists (by (...)), that are neither keywords nor
// followed by "(" (functions, aggregations). A selector that names its
// metric only with __name__ is not seen.
func metricNames(expr string) []string {
	var names []string
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	// skipString returns the index past the string that opens at i.
	skipString := func(i int) int {
		q := expr[i]
		for i++; i < len(expr) && expr[i] != q; i++ {
			if expr[i] == '\\' && q != '`' {
				i++
			}
		}
		return i + 1
	}
	// skip returns the index past the bracketed group that opens at i,
	// strings inside it included.
	skip := func(i int, open, close byte) int {
		depth := 0
		for i < len(expr) {
			switch c := expr[i]; c {
			case '"', '\'', '`':
				i = skipString(i)
				continue
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(i)
		case c == '{':
			i = skip(i, '{', '}')
		case c == '[':
			i = skip(i, '[', ']')
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			switch {
			case slices.Contains(groupings, strings.ToLower(word)) && k < len(expr) && expr[k] == '(':
				i = skip(k, '(', ')')
				continue
			case k < len(expr) && expr[k] == '(':
				// A function or an aggregation.
			case followedByGrouping(expr[k:]):
				// An aggregation with its clause first: sum by (l) (...).
			case slices.Contains(promqlKeywords, strings.ToLower(word)):
			case !slices.Contains(names, word):
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names
}

// followedByGrouping reports whether rest starts with by or without and
// its label list.
func followedByGrouping(rest string) bool {
	for _, kw := range []string{"by", "without"} {
		if len(rest) > len(kw) && strings.EqualFold(rest[:len(kw)], kw) {
			if after := strings.TrimLeft(rest[len(kw):], " \t\n"); strings.HasPrefix(after, "(") {
				return true
			}
		}
	}
	return false
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum without(le) (x) + count by(a)(y) + byte_total`, []string{"x", "y", "byte_total"}},
		{`zombi_hot_backlog_bytes{job="zombi", instance=~"a|b"}`, []string{"zombi_hot_backlog_bytes"}},
		{`sum by (instance, reason) (rate(zombi_flush_failures_total{reason="storage"}[5m])) > 0`,
			[]string{"zombi_flush_failures_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(zombi_flush_lag_seconds_bucket[1m])))`,
			[]string{"zombi_flush_lag_seconds_bucket"}},
		{`a / on (instance) group_left (kind) b offset 5m and bool c`, []string{"a", "b", "c"}},
		{`x{route!~"/health/.*", code=~"5.."} unless ignoring(code) x`, []string{"x"}},
		// Strings may hold braces, quotes and what looks like a metric.
		{`x{l="}{ y \" z"} + label_replace(w, "dst", "$1", "src", "(.*)")`, []string{"x", "w"}},
		{`predict_linear(v[6h], 24 * 3600) < 0.2 * 1e9`, []string{"v"}},
		{`min_over_time(v[5m:30s]) > Inf or NaN`, []string{"v"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
