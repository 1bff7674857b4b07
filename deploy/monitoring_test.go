package deploy_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/store/chain"
)

// registered is every metric family a chainsink process exports, by name. The labelled families only show
// up once they have a series, so each is given one through the methods the indexer calls.
func registered(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	m := metrics.New()
	m.MessageConsumed("blocks")
	m.MessageDecoded(time.Millisecond)
	m.BatchCommitted(chain.Counts{"logs": 1}, []string{"bad_field"}, time.Millisecond)
	m.EventDecoded("ERC20", "Transfer")
	m.LogUndecoded()
	m.BatchFenced()
	m.Retried("postgres")
	m.PartitionsOwned(1)
	m.PartitionsPaused(0)
	m.ConsumerLag("blocks", 0, 1)
	m.OffsetAnomaly("blocks", 0, "retention_gap", true)
	f := m.NewFollow() // chainsink follow's, on its own process's registry
	f.Head(10)
	f.Published(9)
	f.Reorg(2)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range families {
		out[f.GetName()] = f.GetType()
	}
	return out
}

// family is the registered family a PromQL metric name belongs to: itself, or a histogram's or summary's
// _bucket, _sum and _count series.
func family(name string, reg map[string]dto.MetricType) (string, bool) {
	if _, ok := reg[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		typ, ok := reg[base]
		if ok && (typ == dto.MetricType_HISTOGRAM || (suffix != "_bucket" && typ == dto.MetricType_SUMMARY)) {
			return base, true
		}
	}
	return "", false
}

var promql = parser.NewParser(parser.Options{})

// metricNames parses expr and returns the metric names its selectors name.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch s := n.(type) {
		case *parser.VectorSelector:
			name := s.Name
			for _, m := range s.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			if name == "" {
				err = errors.Join(err, errors.New("a selector without a metric name"))
			}
			names = append(names, name)
		}
		return nil
	})
	return names, err
}

// checkNames requires every metric expr names to be registered, and records the families it uses.
func checkNames(t *testing.T, where, expr string, reg map[string]dto.MetricType, used map[string]bool) {
	t.Helper()
	names, err := metricNames(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	for _, n := range names {
		f, ok := family(n, reg)
		if !ok {
			t.Errorf("%s names %s, which chainsink does not export\n%s", where, n, expr)
			continue
		}
		used[f] = true
	}
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource json.RawMessage          `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// grafanaVars are Grafana's built-in interval variables, replaced by a duration PromQL accepts.
var grafanaVars = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}

var variable = regexp.MustCompile(`\$\{?(\w+)\}?`)

// TestDashboard: every query of deploy/grafana/chainsink.json parses with Prometheus' own PromQL parser once
// Grafana's variables are put in, names only metrics chainsink exports, and reads the data source variable;
// every chainsink metric is on the dashboard.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("grafana", "chainsink.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/chainsink.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title, so that imports replace it instead of adding copies")
	}
	vars := map[string]string{}
	for k, v := range grafanaVars {
		vars[k] = v
	}
	for _, v := range d.Templating.List {
		vars[v.Name] = ".*" // a multi-value variable as Grafana expands "All" in a regex matcher
	}
	if _, ok := vars["datasource"]; !ok {
		t.Error("the dashboard has no datasource variable: it would be tied to one Prometheus")
	}
	reg := registered(t)
	used := map[string]bool{}
	ids := map[int]string{}
	queries := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, ok := ids[p.ID]; ok {
				t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q is outside Grafana's 24-column grid: %+v", p.Title, p.GridPos)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if !strings.Contains(string(p.Datasource), "${datasource}") {
				t.Errorf("panel %q does not use the datasource variable: %s", p.Title, p.Datasource)
			}
			for _, tg := range p.Targets {
				queries++
				expr := variable.ReplaceAllStringFunc(tg.Expr, func(v string) string {
					name := variable.FindStringSubmatch(v)[1]
					val, ok := vars[name]
					if !ok {
						t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, name)
					}
					return val
				})
				checkNames(t, "panel "+p.Title, expr, reg, used)
			}
		}
	}
	walk(d.Panels)
	for name := range reg {
		if strings.HasPrefix(name, "chainsink_") && !used[name] {
			t.Errorf("%s is not on the dashboard", name)
		}
	}
	t.Logf("%d panels, %d queries, %d chainsink metrics", len(ids), queries, countPrefix(reg, "chainsink_"))
}

func countPrefix(reg map[string]dto.MetricType, prefix string) int {
	n := 0
	for name := range reg {
		if strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}

// operations is docs/operations.md and the anchors of its headings, as GitHub renders them.
func operations(t *testing.T) (string, map[string]bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if heading, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			anchors[githubAnchor(heading)] = true
		}
	}
	return string(raw), anchors
}

// githubAnchor is the fragment GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as
// hyphens.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

const runbookBase = "https://github.com/chainsink/chainsink/blob/main/docs/operations.md#"

// TestAlertRules: prometheus/alerts.yml loads with Prometheus' own rule loader (unknown fields refused,
// expressions and templates checked), names only metrics chainsink exports, gives every alert a severity,
// a summary and a runbook link to a heading that exists in docs/operations.md, and every alert is expected
// to fire in at least one promtool test of alerts_test.yml. docs/operations.md documents every metric.
func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile(filepath.Join("prometheus", "alerts.yml"), false, model.UTF8Validation,
		promql, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("alerts.yml: %v", errors.Join(errs...))
	}
	reg := registered(t)
	doc, anchors := operations(t)
	used := map[string]bool{}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			checkNames(t, "alert "+r.Alert, r.Expr, reg, used)
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a summary and a description", r.Alert)
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q is not a heading of docs/operations.md", r.Alert, r.Annotations["runbook_url"])
			}
		}
	}
	for name := range reg {
		if strings.HasPrefix(name, "chainsink_") && !strings.Contains(doc, "`"+name) {
			t.Errorf("docs/operations.md does not document %s", name)
		}
	}

	raw, err := os.ReadFile(filepath.Join("prometheus", "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if !slices.Contains(alerts, a.Alertname) {
				t.Errorf("alerts_test.yml tests %s, which alerts.yml does not define", a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("no test of alerts_test.yml sees %s fire", a)
		}
	}
	t.Logf("%d alerts, each tested firing", len(alerts))
}

// TestAlertRulesWithPromtool runs Prometheus' own checks and the rule unit tests. .ci/run installs promtool
// (Debian's prometheus package) and sets CHAINSINK_REQUIRE_PROMTOOL, so that CI cannot skip them.
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CHAINSINK_REQUIRE_PROMTOOL") != "" {
			t.Fatalf("CHAINSINK_REQUIRE_PROMTOOL is set but promtool is not installed: %v", err)
		}
		t.Skip("promtool is not installed (Debian: apt-get install prometheus); CI runs this test")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
