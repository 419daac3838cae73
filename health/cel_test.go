package health

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

var widgetKind = schema.GroupKind{Group: "example.com", Kind: "Widget"}

const readyTrue = "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"

// widget is a custom resource as its controller leaves it; a nil status
// leaves the field out, as before the controller's first write.
func widget(st map[string]any) *unstructured.Unstructured {
	obj := map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": ns, "generation": int64(3)},
		"spec":     map[string]any{"size": int64(2)},
	}
	if st != nil {
		obj["status"] = st
	}
	return &unstructured.Unstructured{Object: obj}
}

func conditions(pairs ...string) map[string]any {
	var cs []any
	for i := 0; i+1 < len(pairs); i += 2 {
		cs = append(cs, map[string]any{"type": pairs[i], "status": pairs[i+1]})
	}
	return map[string]any{"conditions": cs}
}

func mustCompile(t *testing.T, spec CheckSpec) *Check {
	t.Helper()
	c, err := CompileCheck(spec)
	if err != nil {
		t.Fatalf("CompileCheck(%+v): %v", spec, err)
	}
	return c
}

func TestEvaluateCEL(t *testing.T) {
	big := make([]any, 2000)
	for i := range big {
		big[i] = int64(i)
	}
	tests := []struct {
		name            string
		current, failed string
		obj             *unstructured.Unstructured
		pods            []corev1.Pod
		wantStatus      status.Status
		wantMessage     string
	}{
		{
			name: "ready", current: readyTrue, obj: widget(conditions("Ready", "True")),
			wantStatus: status.CurrentStatus, wantMessage: "current: " + readyTrue,
		},
		{
			name: "not ready", current: readyTrue, obj: widget(conditions("Ready", "False")),
			wantStatus: status.InProgressStatus, wantMessage: "not current: " + readyTrue,
		},
		{
			name: "no status yet", current: readyTrue, obj: widget(nil),
			wantStatus: status.InProgressStatus, wantMessage: "not current: " + readyTrue + ": no such key: conditions",
		},
		{
			name: "has guards a missing status", current: "has(status.ready) && status.ready", obj: widget(nil),
			wantStatus: status.InProgressStatus, wantMessage: "not current: has(status.ready) && status.ready",
		},
		{
			name: "optional field", current: "status.?phase.orValue('') == 'Running'", obj: widget(map[string]any{"phase": "Running"}),
			wantStatus: status.CurrentStatus, wantMessage: "current: status.?phase.orValue('') == 'Running'",
		},
		{
			name: "failed", current: readyTrue, failed: "status.phase == 'Error'",
			obj:        widget(map[string]any{"phase": "Error"}),
			wantStatus: status.FailedStatus, wantMessage: "failed: status.phase == 'Error'",
		},
		{
			name: "failed wins over current", current: "true", failed: "status.phase == 'Error'",
			obj:        widget(map[string]any{"phase": "Error"}),
			wantStatus: status.FailedStatus, wantMessage: "failed: status.phase == 'Error'",
		},
		{
			// The failed expression reads a field this object lacks: it is
			// not failing.
			name: "failed on a missing field", current: readyTrue, failed: "status.phase == 'Error'",
			obj:        widget(conditions("Ready", "True")),
			wantStatus: status.CurrentStatus, wantMessage: "current: " + readyTrue,
		},
		{
			name: "metadata and spec", current: "metadata.generation == status.observedGeneration && spec.size == status.replicas",
			obj:        widget(map[string]any{"observedGeneration": int64(3), "replicas": int64(2)}),
			wantStatus: status.CurrentStatus, wantMessage: "current: metadata.generation == status.observedGeneration && spec.size == status.replicas",
		},
		{
			name: "the whole object", current: "object.kind == 'Widget' && object.metadata.name == 'w'", obj: widget(nil),
			wantStatus: status.CurrentStatus, wantMessage: "current: object.kind == 'Widget' && object.metadata.name == 'w'",
		},
		{
			name: "not a bool at run time", current: "status.phase", obj: widget(map[string]any{"phase": "Running"}),
			wantStatus: status.InProgressStatus, wantMessage: "not current: status.phase: gives string, want a bool",
		},
		{
			name: "cost limit", current: "status.items.all(a, status.items.all(b, a == b || a != b))",
			obj:        widget(map[string]any{"items": big}),
			wantStatus: status.InProgressStatus, wantMessage: "operation cancelled: actual cost limit exceeded",
		},
		{
			// kstatus reads Ready=False as InProgress; the check decides.
			name: "replaces kstatus", current: "status.conditions.exists(c, c.type == 'Ready')", obj: widget(conditions("Ready", "False")),
			wantStatus: status.CurrentStatus, wantMessage: "current: status.conditions.exists(c, c.type == 'Ready')",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := mustCompile(t, CheckSpec{GroupKind: widgetKind, Current: tt.current, Failed: tt.failed})
			got, err := Evaluate(tt.obj, tt.pods, check)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got.Status != tt.wantStatus || !strings.Contains(got.Message, tt.wantMessage) {
				t.Errorf("Evaluate = %s %q, want %s %q", got.Status, got.Message, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

// TestEvaluateCELKeepsFailFast pins that a check on a built-in kind
// replaces kstatus but not the kind's own failure rules.
func TestEvaluateCELKeepsFailFast(t *testing.T) {
	d := deployment()
	rs := replicaSet("web-6d4", "2", d)
	pods := deploymentRevisionPods(d, items(rs), items(pod("web-6d4-abcde", rs, "ReplicaSet", waiting("CrashLoopBackOff", ""))))
	check := mustCompile(t, CheckSpec{GroupKind: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Current: "true"})
	got, err := Evaluate(toUnstructured(t, d), pods, check)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != status.FailedStatus || got.Message != "pod web-6d4-abcde container app: CrashLoopBackOff" {
		t.Errorf("Evaluate = %s %q, want the crash loop", got.Status, got.Message)
	}
	got, err = Evaluate(toUnstructured(t, deployment(rolling)), nil, check)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != status.CurrentStatus {
		t.Errorf("Evaluate of a rolling Deployment = %s %q, want the check's Current", got.Status, got.Message)
	}
}

func TestCompileCheck(t *testing.T) {
	tests := []struct {
		name            string
		current, failed string
		want            []string // field: fragment, in order
	}{
		{name: "valid", current: readyTrue, failed: "status.?phase.orValue('') == 'Error'"},
		{name: "dynamic result", current: "status.ready"},
		{name: "string functions", current: "metadata.name.startsWith('w') && status.phase.lowerAscii() == 'ready'"},
		{name: "missing current", want: []string{"current: required"}},
		{
			name: "syntax error", current: "status.conditions.exists(c, ",
			want: []string{"current: 1:"},
		},
		{
			name: "unknown variable", current: "statsu.ready",
			want: []string{"current: 1:1: undeclared reference to 'statsu'"},
		},
		{name: "not a bool", current: "'ready'", want: []string{"current: gives string, want a bool"}},
		{name: "an int", current: "1 + 1", want: []string{"current: gives int, want a bool"}},
		{
			name: "both fields", current: "status.ready ==", failed: "nope",
			want: []string{"current: 1:", "failed: 1:1: undeclared reference to 'nope'"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CompileCheck(CheckSpec{GroupKind: widgetKind, Current: tt.current, Failed: tt.failed})
			if len(tt.want) == 0 {
				if err != nil || c == nil {
					t.Fatalf("CompileCheck = %v, %v; want a check", c, err)
				}
				if c.Spec().Current != tt.current {
					t.Errorf("Spec().Current = %q", c.Spec().Current)
				}
				return
			}
			if c != nil || err == nil {
				t.Fatalf("CompileCheck = %v, %v; want errors %q", c, err, tt.want)
			}
			var fields []*ExpressionError
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ee *ExpressionError
				if !errors.As(e, &ee) {
					t.Fatalf("error %v is not an *ExpressionError", e)
				}
				fields = append(fields, ee)
			}
			if len(fields) != len(tt.want) {
				t.Fatalf("errors = %v, want %q", err, tt.want)
			}
			for i, w := range tt.want {
				if got := fields[i].Error(); !strings.HasPrefix(got, w) || strings.Contains(got, "\n") {
					t.Errorf("error %d = %q, want one line starting with %q", i, got, w)
				}
			}
		})
	}
}

// TestCheckCEL drives a custom resource through the loop: InProgress until
// its controller writes a Ready condition, Failed at once when its phase
// says so.
func TestCheckCEL(t *testing.T) {
	widgetID := object.ObjMetadata{Namespace: ns, Name: "w", GroupKind: widgetKind}
	tests := []struct {
		name        string
		status      map[string]any // written after 50ms
		wantOutcome Outcome
		wantReason  string
	}{
		{name: "becomes ready", status: conditions("Ready", "True"), wantOutcome: Healthy, wantReason: "2 objects Current"},
		{
			name: "fails", status: map[string]any{"phase": "Error"}, wantOutcome: Failed,
			wantReason: "Widget staging/w: failed: status.phase == 'Error'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			mapper := meta.NewDefaultRESTMapper(nil)
			mapper.Add(widgetKind.WithVersion("v1"), meta.RESTScopeNamespace)
			cl := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
				WithRESTMapper(meta.MultiRESTMapper{mapper, testrestmapper.TestOnlyStaticRESTMapper(clientgoscheme.Scheme)}).
				WithObjects(widget(nil), webObjects(deployment())[4]).Build()
			done := make(chan error, 1)
			time.AfterFunc(50*time.Millisecond, func() {
				w := widget(nil)
				if err := cl.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
					done <- err
					return
				}
				w.Object["status"] = tt.status
				done <- cl.Update(ctx, w)
			})
			opts := fastOptions(time.Minute, 0)
			opts.Checks = []*Check{mustCompile(t, CheckSpec{GroupKind: widgetKind, Version: "v1", Current: readyTrue, Failed: "status.phase == 'Error'"})}
			v, err := NewChecker(cl).Check(ctx, object.ObjMetadataSet{widgetID, configID}, opts)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("write status: %v", err)
			}
			if v.Outcome != tt.wantOutcome || !strings.Contains(v.Reason, tt.wantReason) {
				t.Errorf("Check = %s %q, want %s with %q", v.Outcome, v.Reason, tt.wantOutcome, tt.wantReason)
			}
			// The outcome itself shows the status written mid-check was seen;
			// timing belongs in benchmarks, so only a hang is caught here.
			if v.Duration > 30*time.Second {
				t.Errorf("Check took %s, want the status seen at a later poll", v.Duration)
			}
		})
	}
}

func TestCheckRefusesChecks(t *testing.T) {
	check := mustCompile(t, CheckSpec{GroupKind: widgetKind, Current: "true"})
	opts := fastOptions(time.Minute, 0)
	opts.Checks = []*Check{check, nil, check}
	opts.HTTP = []HTTPCheck{
		{URL: "ftp://127.0.0.1/", Status: 200, Timeout: time.Second},
		{URL: "http://127.0.0.1/", Status: 0, Timeout: time.Second},
		{URL: "http://127.0.0.1/", Status: 200},
	}
	v, err := NewChecker(newFakeClient(nil)).Check(t.Context(), object.ObjMetadataSet{webID}, opts)
	want := "health options: checks[1]: nil; compile it with CompileCheck\n" +
		"checks[2]: a second check of Widget.example.com\n" +
		`http check "ftp://127.0.0.1/": must be an http:// or https:// URL` + "\n" +
		"http check http://127.0.0.1/: status 0: must be 100 to 599\n" +
		"http check http://127.0.0.1/: timeout 0s: must be positive"
	if v != nil || err == nil || err.Error() != want {
		t.Errorf("Check = %v, %v; want\n%s", v, err, want)
	}
}
