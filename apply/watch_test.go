package apply

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func watched() *metav1.PartialObjectMetadata {
	at := metav1.NewTime(time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC))
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: "web", Namespace: "shop", UID: "u1", ResourceVersion: "7", Generation: 3,
		Labels:      map[string]string{OwnerLabel: "staging", "app": "web"},
		Annotations: map[string]string{"deployment.kubernetes.io/revision": "2"},
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, APIVersion: "apps/v1", Time: &at,
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}},
			{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1", Time: &at,
				Subresource: "status", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{}}`)}},
		},
	}}
}

// TestTrimKeepsOnlyIdentity: a watched object is cached as its name,
// namespace and version, owner label and fingerprint; its UID, labels,
// annotations, managed fields and other metadata go.
func TestTrimKeepsOnlyIdentity(t *testing.T) {
	in := watched()
	out, err := trim(in)
	if err != nil {
		t.Fatal(err)
	}
	k := out.(*kept)
	if k.Name != "web" || k.Namespace != "shop" || k.ResourceVersion != "7" || k.UID != "" {
		t.Fatalf("identity lost: %+v", k.ObjectMeta)
	}
	if len(k.Labels) != 0 || len(k.Annotations) != 0 || len(k.ManagedFields) != 0 || k.Generation != 0 {
		t.Fatalf("metadata kept: %+v", k.ObjectMeta)
	}
	if k.owner != "staging" || change(schema.GroupKind{Kind: "Deployment"}, k, false).Owner != "staging" {
		t.Fatalf("owner %q, want the owner label's", k.owner)
	}
	if k.fingerprint != Fingerprint(in) || k.imperative {
		t.Fatalf("fingerprint %q, imperative %v; want %q, false", k.fingerprint, k.imperative, Fingerprint(in))
	}
	whole := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{OwnerLabel: "prod"}}}
	if o := keptOf(whole).owner; o != "prod" {
		t.Fatalf("owner of an object cached whole = %q, want its label's", o)
	}
	in.ManagedFields = append(in.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate})
	out, _ = trim(in)
	if !out.(*kept).imperative {
		t.Fatal("a kubectl-edit entry is not marked imperative")
	}
}

// TestFingerprint: a controller's status write leaves the fingerprint as
// it was; every other write changes it.
func TestFingerprint(t *testing.T) {
	base := Fingerprint(watched())
	later := metav1.NewTime(time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		name   string
		edit   func(*metav1.PartialObjectMetadata)
		change bool
	}{
		{"resourceVersion only", func(p *metav1.PartialObjectMetadata) { p.ResourceVersion = "8" }, false},
		{"status write", func(p *metav1.PartialObjectMetadata) { p.ManagedFields[1].Time = &later }, false},
		{"spec change (generation)", func(p *metav1.PartialObjectMetadata) { p.Generation = 4 }, true},
		{"label", func(p *metav1.PartialObjectMetadata) { p.Labels["app"] = "hacked" }, true},
		{"annotation", func(p *metav1.PartialObjectMetadata) { p.Annotations["x"] = "y" }, true},
		{"a manager's time", func(p *metav1.PartialObjectMetadata) { p.ManagedFields[0].Time = &later }, true},
		{"a new manager", func(p *metav1.PartialObjectMetadata) {
			p.ManagedFields = append(p.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kubectl-patch", Operation: metav1.ManagedFieldsOperationUpdate})
		}, true},
		{"a scale", func(p *metav1.PartialObjectMetadata) {
			p.ManagedFields = append(p.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kubectl-scale", Subresource: "scale"})
		}, true},
		{"deletion", func(p *metav1.PartialObjectMetadata) { now := metav1.Now(); p.DeletionTimestamp = &now }, true},
	} {
		p := watched()
		tc.edit(p)
		if got := Fingerprint(p) != base; got != tc.change {
			t.Errorf("%s: fingerprint changed = %v, want %v", tc.name, got, tc.change)
		}
	}
}
