// Package deploy holds what an operator installs next to chainsink, and the tests that keep it true to the
// code:
//
//   - grafana/chainsink.json: a Grafana dashboard (JSON model, the Prometheus data source as a variable);
//   - prometheus/alerts.yml: alert rules, each linked to its runbook entry in docs/operations.md, with
//     promtool unit tests in prometheus/alerts_test.yml;
//   - kubernetes/: a StatefulSet for `chainsink run`, a Deployment for `chainsink follow`, Jobs for `migrate
//     up` and `tables apply`, an example backfill Job, the ConfigMaps (settings, and the typed tables'
//     configuration), Service and PodDisruptionBudget, for `kubectl apply -k`;
//   - chainsink.example.yaml: a typed-tables configuration for mainnet (Uniswap V2 and V3 through their
//     factories, WETH, ERC-20), kept identical to the ConfigMap's copy and compiled against the built-in ABIs;
//   - chainsink.env.example, chainsink-healthcheck and contracts.example.json for docker and compose.
//
// The tests parse every PromQL expression with Prometheus' own parser and require each metric they name to be
// one chainsink registers (and every chainsink metric to be on the dashboard and in docs/operations.md); run
// `promtool check rules` and `promtool test rules` when promtool is installed (CI installs it); and decode
// every Kubernetes manifest strictly into the Kubernetes API types, then run each container's command line
// and CHAINSINK_* variables through chainsink's real flag parser. There is no Go code here besides tests.
package deploy
