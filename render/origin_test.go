package render

import "testing"

// TestRenderFiles pins that every object is traced to the file it came
// from, through bases and generators, and that the origin annotations used
// to trace them are not part of the rendering (nor of its digest) unless the
// kustomization asks for them.
func TestRenderFiles(t *testing.T) {
	res := mustRender(t, overlayRepo, "envs/staging")
	want := map[string]string{
		"ConfigMap":  "envs/staging/kustomization.yaml", // a generator
		"Service":    "base/service.yaml",
		"Deployment": "base/deployment.yaml",
	}
	if len(res.Files) != len(res.Objects) {
		t.Fatalf("%d files for %d objects", len(res.Files), len(res.Objects))
	}
	for i, o := range res.Objects {
		if got := res.Files[i]; got != want[o.GetKind()] {
			t.Errorf("%s: file %q, want %q", o.GetKind(), got, want[o.GetKind()])
		}
		if _, ok := o.GetAnnotations()[originAnnotation]; ok {
			t.Errorf("%s keeps the origin annotation: %v", o.GetKind(), o.GetAnnotations())
		}
	}

	k := overlayRepo["envs/production/kustomization.yaml"]
	prod := mustRender(t, with(overlayRepo, files{"envs/production/kustomization.yaml": k + "buildMetadata: [originAnnotations]\n"}), "envs/production")
	plainProd := mustRender(t, overlayRepo, "envs/production")
	for i, o := range prod.Objects {
		if _, ok := o.GetAnnotations()[originAnnotation]; !ok {
			t.Errorf("%s: origin annotation removed although the kustomization asks for it", o.GetKind())
		}
		if prod.Files[i] == "" {
			t.Errorf("%s: no file", o.GetKind())
		}
	}
	if prod.Digest == plainProd.Digest {
		t.Error("asking for origin annotations does not change the digest; it should, they are in the rendering")
	}

	flat := mustRender(t, files{"app/b.yaml": cmYAML("b"), "app/a/x.yaml": cmYAML("a") + "---\n" + cmYAML("a2")}, "app")
	if got, want := flat.Files, []string{"app/a/x.yaml", "app/a/x.yaml", "app/b.yaml"}; !equal(got, want) {
		t.Errorf("plain directory files = %q, want %q", got, want)
	}
}

func cmYAML(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
}
