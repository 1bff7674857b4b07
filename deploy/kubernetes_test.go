package deploy_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/chainsink/chainsink/internal/cli"
	"github.com/chainsink/chainsink/internal/typed"
)

// manifests is every object of deploy/kubernetes, decoded strictly into its Kubernetes API type: an unknown
// or misspelt field, a duplicate key or a wrong type fails the decode.
type manifests struct {
	configMaps   map[string]*corev1.ConfigMap
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	jobs         map[string]*batchv1.Job // by file
	cronJobs     map[string]*batchv1.CronJob
	pdbs         []*policyv1.PodDisruptionBudget
	files        []string
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, jobs: map[string]*batchv1.Job{}, cronJobs: map[string]*batchv1.CronJob{}}
	for _, path := range paths {
		if filepath.Base(path) == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, filepath.Base(path))
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(raw) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s, document %d: %v", path, i+1, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "batch/v1 Job":
				obj = &batchv1.Job{}
			case "batch/v1 CronJob":
				obj = &batchv1.CronJob{}
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			default:
				t.Fatalf("%s, document %d: %q %q is not a kind this test knows", path, i+1, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s, document %d (%s): %v", path, i+1, tm.Kind, err)
			}
			var meta metav1.ObjectMeta
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
				meta = o.ObjectMeta
			case *corev1.Service:
				m.services = append(m.services, o)
				meta = o.ObjectMeta
			case *appsv1.StatefulSet:
				m.statefulSets = append(m.statefulSets, o)
				meta = o.ObjectMeta
			case *appsv1.Deployment:
				m.deployments = append(m.deployments, o)
				meta = o.ObjectMeta
			case *batchv1.Job:
				m.jobs[filepath.Base(path)] = o
				meta = o.ObjectMeta
			case *batchv1.CronJob:
				m.cronJobs[filepath.Base(path)] = o
				meta = o.ObjectMeta
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
				meta = o.ObjectMeta
			}
			for _, e := range validation.IsDNS1123Subdomain(meta.Name) {
				t.Errorf("%s: %s name %q: %s", path, tm.Kind, meta.Name, e)
			}
			if meta.Namespace != "" {
				t.Errorf("%s: %s %s sets a namespace; kustomization.yaml sets it for all", path, tm.Kind, meta.Name)
			}
		}
	}
	return m
}

var separator = regexp.MustCompile(`(?m)^---\s*$`)

func splitDocuments(raw []byte) [][]byte {
	var docs [][]byte
	for _, d := range separator.Split(string(raw), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// flagsByEnv maps every CHAINSINK_* variable to the flag of cmd it sets.
func flagsByEnv(cmd *cobra.Command) map[string]*pflag.Flag {
	out := map[string]*pflag.Flag{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) { out[cli.EnvName(f.Name)] = f })
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { out[cli.EnvName(f.Name)] = f })
	return out
}

// anyCommandHas reports whether some chainsink command has a flag that variable sets.
func anyCommandHas(root *cobra.Command, variable string) bool {
	if _, ok := flagsByEnv(root)[variable]; ok {
		return true
	}
	for _, c := range root.Commands() {
		if anyCommandHas(c, variable) {
			return true
		}
	}
	return false
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// secrets are the Secrets the manifests may reference; docs/operations.md says how to create each.
var secrets = []string{"chainsink-database", "chainsink-rpc"}

// checkContainer runs a container's command line and CHAINSINK_* variables through chainsink's own command
// tree: the subcommand exists, every flag exists and every value parses as that flag's type.
func checkContainer(t *testing.T, where string, c corev1.Container, m *manifests) *cobra.Command {
	t.Helper()
	root := cli.NewRoot(io.Discard, io.Discard)
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.Value != "":
			env[e.Name] = e.Value
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			env[e.Name] = "chainsink-0" // metadata.name, as the pod of a StatefulSet has it
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			if !slices.Contains(secrets, e.ValueFrom.SecretKeyRef.Name) {
				t.Errorf("%s: %s comes from Secret %q, which docs/operations.md does not describe", where, e.Name,
					e.ValueFrom.SecretKeyRef.Name)
			}
		default:
			t.Errorf("%s: %s has neither a value nor a source this test knows", where, e.Name)
		}
	}
	// Kubernetes expands $(VAR) in args from the container's variables; an unknown one stays as it is.
	args := make([]string, len(c.Args))
	used := map[string]bool{}
	for i, a := range c.Args {
		args[i] = envRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := env[name]
			if !ok {
				t.Errorf("%s: args use $(%s), which the container does not define", where, name)
			}
			used[name] = true
			return v
		})
	}
	if len(c.Command) > 0 {
		t.Errorf("%s: command %v replaces the image's entrypoint (chainsink); set args only", where, c.Command)
	}
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Fatalf("%s: args %v name no chainsink command: %v", where, c.Args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: chainsink %s %v: %v", where, cmd.CommandPath(), rest, err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: %s: %v", where, cmd.CommandPath(), err)
	}
	flags := flagsByEnv(cmd)
	setFrom := func(source, name, value string, fromSecret bool) {
		if !strings.HasPrefix(name, "CHAINSINK_") {
			if !used[name] && source == "env" {
				t.Errorf("%s: %s is set but neither chainsink nor the args read it", where, name)
			}
			return
		}
		f, ok := flags[name]
		if !ok {
			if source == "env" || !anyCommandHas(root, name) {
				t.Errorf("%s: %s (%s) is no flag of %s", where, name, source, cmd.CommandPath())
			}
			return
		}
		if !fromSecret {
			if err := f.Value.Set(value); err != nil {
				t.Errorf("%s: %s=%q (%s): %v", where, name, value, source, err)
			}
		}
	}
	for _, e := range c.Env {
		setFrom("env", e.Name, e.Value, e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil)
	}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Errorf("%s: envFrom other than a ConfigMap", where)
			continue
		}
		cm, ok := m.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: envFrom ConfigMap %q is not in deploy/kubernetes", where, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			setFrom("ConfigMap "+cm.Name, k, v, false)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: needs CPU and memory requests and a memory limit", where)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: want allowPrivilegeEscalation false and a read-only root filesystem (chainsink writes no files)", where)
	}
	return cmd
}

// checkPod holds what every chainsink pod must have: the image's non-root user, no service account token.
func checkPod(t *testing.T, where string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 10001 {
		t.Errorf("%s: want runAsNonRoot and runAsUser 10001, the Dockerfile's USER", where)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: chainsink does not talk to the Kubernetes API; do not mount a token", where)
	}
}

func flagValue(t *testing.T, cmd *cobra.Command, name string) string {
	t.Helper()
	f := cmd.Flags().Lookup(name)
	if f == nil {
		t.Fatalf("%s has no --%s", cmd.CommandPath(), name)
	}
	return f.Value.String()
}

// checkServed holds a long-running container to its --metrics-addr: a named container port, liveness on
// /healthz and readiness on /readyz there, and the pod's scrape annotations pointing at it.
func checkServed(t *testing.T, where string, cmd *cobra.Command, c corev1.Container, annotations map[string]string) {
	t.Helper()
	_, port, err := net.SplitHostPort(flagValue(t, cmd, "metrics-addr"))
	if err != nil || port == "" {
		t.Fatalf("%s: --metrics-addr %q: %v", where, flagValue(t, cmd, "metrics-addr"), err)
	}
	var named string
	for _, p := range c.Ports {
		if strconv.Itoa(int(p.ContainerPort)) == port {
			named = p.Name
		}
	}
	if named == "" {
		t.Fatalf("%s: no container port is the --metrics-addr port %s", where, port)
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != named {
			t.Errorf("%s: want an httpGet probe of %s on port %q, have %+v", where, want, named, probe)
		}
	}
	if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != port ||
		annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: the scrape annotations do not point at /metrics on port %s: %v", where, port, annotations)
	}
}

// TestKubernetesManifests: every manifest decodes strictly into its API type; every container's args and
// CHAINSINK_* variables are flags of the chainsink command it runs and parse; the run StatefulSet uses the
// pod name as --instance-id, probes /healthz and /readyz on the --metrics-addr port, is scraped on that port,
// stops within its grace period, and is selected by its Service and PodDisruptionBudget; kustomization.yaml
// lists every manifest but the example backfill Job and retention CronJob.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.statefulSets) != 1 {
		t.Fatalf("want one StatefulSet (chainsink run), have %d", len(m.statefulSets))
	}
	ss := m.statefulSets[0]
	where := "StatefulSet " + ss.Name
	checkPod(t, where, ss.Spec.Template.Spec)
	if len(ss.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container", where)
	}
	c := ss.Spec.Template.Spec.Containers[0]
	cmd := checkContainer(t, where, c, m)
	if cmd.Name() != "run" {
		t.Fatalf("%s runs chainsink %s, want run", where, cmd.Name())
	}
	if got := flagValue(t, cmd, "instance-id"); got != "chainsink-0" {
		t.Errorf("%s: --instance-id is %q; want the pod's name, from metadata.name", where, got)
	}
	checkServed(t, where, cmd, c, ss.Spec.Template.Annotations)
	shutdown, err := time.ParseDuration(flagValue(t, cmd, "shutdown-timeout"))
	if err != nil {
		t.Fatal(err)
	}
	if g := ss.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		t.Errorf("%s: terminationGracePeriodSeconds must exceed --shutdown-timeout %v", where, shutdown)
	}
	podLabels := labels.Set(ss.Spec.Template.Labels)
	selects := func(what string, sel *metav1.LabelSelector) {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("%s does not select the run pods (%v)", what, err)
		}
	}
	selects(where+" selector", ss.Spec.Selector)
	var headless bool
	for _, svc := range m.services {
		if svc.Name == ss.Spec.ServiceName {
			headless = svc.Spec.ClusterIP == corev1.ClusterIPNone
			selects("Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		}
	}
	if !headless {
		t.Errorf("%s: serviceName %q is not a headless Service of deploy/kubernetes", where, ss.Spec.ServiceName)
	}
	if len(m.pdbs) != 1 {
		t.Errorf("want one PodDisruptionBudget, have %d", len(m.pdbs))
	}
	for _, p := range m.pdbs {
		selects("PodDisruptionBudget "+p.Name, p.Spec.Selector)
	}

	if len(m.deployments) != 1 {
		t.Fatalf("want one Deployment (chainsink follow), have %d", len(m.deployments))
	}
	d := m.deployments[0]
	where = "Deployment " + d.Name
	checkPod(t, where, d.Spec.Template.Spec)
	if fc := checkContainer(t, where, d.Spec.Template.Spec.Containers[0], m); fc.Name() != "follow" {
		t.Errorf("%s runs %s, want follow", where, fc.CommandPath())
	} else {
		checkServed(t, where, fc, d.Spec.Template.Spec.Containers[0], d.Spec.Template.Annotations)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("%s: one replica and the Recreate strategy: two followers at once publish everything twice", where)
	}
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: its selector does not select its pods (%v)", where, err)
	}

	wantJobs := map[string]string{"migrate-job.yaml": "up", "tables-job.yaml": "apply", "backfill-job.yaml": "backfill"}
	for file, want := range wantJobs {
		job, ok := m.jobs[file]
		if !ok {
			t.Errorf("kubernetes/%s is missing", file)
			continue
		}
		where := "Job " + job.Name
		checkPod(t, where, job.Spec.Template.Spec)
		for _, c := range job.Spec.Template.Spec.Containers {
			if cmd := checkContainer(t, where, c, m); cmd.Name() != want {
				t.Errorf("%s runs %s, want %s", where, cmd.CommandPath(), want)
			}
		}
		if p := job.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyOnFailure && p != corev1.RestartPolicyNever {
			t.Errorf("%s: restartPolicy %q", where, p)
		}
	}

	for file, want := range map[string]string{"retention-cronjob.yaml": "retention"} {
		cj, ok := m.cronJobs[file]
		if !ok {
			t.Errorf("kubernetes/%s is missing", file)
			continue
		}
		where := "CronJob " + cj.Name
		spec := cj.Spec.JobTemplate.Spec.Template.Spec
		checkPod(t, where, spec)
		for _, c := range spec.Containers {
			if cmd := checkContainer(t, where, c, m); cmd.Name() != want {
				t.Errorf("%s runs %s, want %s", where, cmd.CommandPath(), want)
			}
		}
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("%s: two runs at once would delete the same heights twice over; want concurrencyPolicy Forbid", where)
		}
	}

	// kustomization.yaml: the kustomize fields it uses, nothing misspelt, every manifest but the examples.
	raw, err := os.ReadFile(filepath.Join("kubernetes", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Namespace  string `json:"namespace"`
		Labels     []struct {
			Pairs map[string]string `json:"pairs"`
		} `json:"labels"`
		Resources []string `json:"resources"`
		Images    []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	examples := []string{"backfill-job.yaml", "retention-cronjob.yaml"}
	for _, f := range m.files {
		if listed := slices.Contains(k.Resources, f); listed == slices.Contains(examples, f) {
			t.Errorf("kustomization.yaml: %s listed=%v; every manifest but the examples (%v) belongs in it", f, listed, examples)
		}
	}
	for _, img := range k.Images {
		if img.Name != ss.Spec.Template.Spec.Containers[0].Image {
			t.Errorf("kustomization.yaml sets image %q, which the StatefulSet does not use", img.Name)
		}
	}
	doc, _ := operations(t)
	for _, s := range secrets {
		if !strings.Contains(doc, "kubectl -n chainsink create secret generic "+s) {
			t.Errorf("docs/operations.md does not say how to create the Secret %s", s)
		}
	}
	t.Logf("%d files, %d ConfigMaps, %d Services, %d StatefulSets, %d Deployments, %d Jobs, %d PodDisruptionBudgets",
		len(m.files), len(m.configMaps), len(m.services), len(m.statefulSets), len(m.deployments), len(m.jobs), len(m.pdbs))
}

// TestTypedTablesConfig: the ConfigMap chainsink-config holds deploy/chainsink.example.yaml unchanged, the
// file compiles against the built-in ABIs, and every container that reads CHAINSINK_CONFIG mounts it there.
func TestTypedTablesConfig(t *testing.T) {
	m := loadManifests(t)
	cm, ok := m.configMaps["chainsink-config"]
	if !ok {
		t.Fatal("no ConfigMap chainsink-config")
	}
	example, err := os.ReadFile("chainsink.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["chainsink.yaml"] != string(example) {
		t.Fatal("ConfigMap chainsink-config's chainsink.yaml differs from deploy/chainsink.example.yaml; copy it over")
	}
	ts, err := typed.CompileYAML("chainsink.example.yaml", example, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ts.HasFactory() || len(ts.All) < 8 {
		t.Errorf("the example makes %d tables (factory: %v)", len(ts.All), ts.HasFactory())
	}
	var specs []corev1.PodSpec
	for _, ss := range m.statefulSets {
		specs = append(specs, ss.Spec.Template.Spec)
	}
	for _, j := range m.jobs {
		specs = append(specs, j.Spec.Template.Spec)
	}
	for _, d := range m.deployments {
		specs = append(specs, d.Spec.Template.Spec)
	}
	readers := 0
	for _, spec := range specs {
		for _, c := range spec.Containers {
			var path string
			for _, e := range c.Env {
				if e.Name == "CHAINSINK_CONFIG" {
					path = e.Value
				}
			}
			if path == "" {
				continue
			}
			readers++
			mounted := false
			for _, vm := range c.VolumeMounts {
				for _, v := range spec.Volumes {
					if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name &&
						filepath.Join(vm.MountPath, "chainsink.yaml") == path {
						mounted = true
					}
				}
			}
			if !mounted {
				t.Errorf("container %s reads CHAINSINK_CONFIG=%s but does not mount chainsink-config there", c.Name, path)
			}
		}
	}
	if readers < 2 {
		t.Errorf("%d containers read the configuration; want chainsink run and the tables Job", readers)
	}
}
