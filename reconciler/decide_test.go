package reconciler

import (
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"ferry.dev/ferry/apply"
)

func TestDeletionRisk(t *testing.T) {
	e := func(id string) apply.Entry { return apply.Entry{ID: id, Version: "v1"} }
	base := apply.Inventory{e("app_a__ConfigMap"), e("app_b__ConfigMap"), e("app_web_apps_Deployment"), e("_app__Namespace")}
	cases := []struct {
		name     string
		planned  apply.Inventory
		fraction float64
		want     string // substring; "" means no risk
	}{
		{"nothing deleted", base, 0.5, ""},
		{"one ConfigMap of four", base[1:], 0.5, ""},
		{"a Namespace", base[:3], 1, "would delete Namespace app"},
		{"a PVC", append(base[:4:4], e("app_data__PersistentVolumeClaim")), 1, ""},
		{"more than the fraction", base[3:], 0.5, "would delete 3 of 4 objects"},
		{"fraction 1 allows all but protected kinds", base[3:], 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := deletionRisk(base, tc.planned, tc.fraction)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("deletionRisk = %q, want %q", got, tc.want)
			}
		})
	}
	withPVC := append(apply.Inventory{e("app_data__PersistentVolumeClaim")}, base...)
	if got := deletionRisk(withPVC, base, 1); !strings.Contains(got, "PersistentVolumeClaim app/data") {
		t.Fatalf("PVC deletion: %q", got)
	}
	crd := apply.Inventory{e("_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition")}
	if got := deletionRisk(crd, nil, 1); !strings.Contains(got, "CustomResourceDefinition") {
		t.Fatalf("CRD deletion: %q", got)
	}
}

func TestRevertMessage(t *testing.T) {
	c1 := &object.Commit{Hash: plumbing.NewHash("1111111111111111111111111111111111111111"), Message: "Deploy v3\n\nbody"}
	c2 := &object.Commit{Hash: plumbing.NewHash("2222222222222222222222222222222222222222"), Message: "Tune limits"}
	one := revertMessage([]*object.Commit{c1}, "Deployment app/web: CrashLoopBackOff\nmore")
	want := "Revert \"Deploy v3\"\n\nThis reverts commit 1111111111111111111111111111111111111111.\n\n" +
		"Ferry-Reverted: 1111111111111111111111111111111111111111\nFerry-Reason: Deployment app/web: CrashLoopBackOff more\n"
	if one != want {
		t.Fatalf("one commit:\n%s\nwant:\n%s", one, want)
	}
	two := revertMessage([]*object.Commit{c2, c1}, "x")
	for _, s := range []string{"Revert \"Tune limits\" and 1 earlier commits", "This reverts commit 2222", "This reverts commit 1111", "Ferry-Reverted: 2222", "Ferry-Reverted: 1111"} {
		if !strings.Contains(two, s) {
			t.Fatalf("two commits: lacks %q:\n%s", s, two)
		}
	}
}
