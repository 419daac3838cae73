package render

import "testing"

func TestDigest(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\ndata: {k: v, n: \"1\"}\n"
	const svc = "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: 80}, {port: 443}]}\n"
	want := mustRender(t, files{"envs/plain/all.yaml": cm + "---\n" + svc}, "envs/plain").Digest

	tests := []struct {
		name string
		fs   files
		same bool
	}{
		{"same content, other files elsewhere", files{"envs/plain/all.yaml": cm + "---\n" + svc, "README.md": "x"}, true},
		{"keys reordered", files{"envs/plain/all.yaml": `data: {n: "1", k: v}
metadata: {namespace: x, name: a}
kind: ConfigMap
apiVersion: v1
---
spec: {ports: [{port: 80}, {port: 443}]}
metadata: {name: b}
apiVersion: v1
kind: Service
`}, true},
		{"documents reordered", files{"envs/plain/all.yaml": svc + "---\n" + cm}, true},
		{"split across files", files{"envs/plain/a.yaml": svc, "envs/plain/b/c.yaml": cm}, true},
		{"JSON and block style", files{
			"envs/plain/cm.json":  `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","namespace":"x"},"data":{"k":"v","n":"1"}}`,
			"envs/plain/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: b\nspec:\n  ports:\n  - port: 80\n  - port: 443\n",
		}, true},
		{"a value changed", files{"envs/plain/all.yaml": cm + "---\n" + svc[:len(svc)-len("443}]}\n")] + "8443}]}\n"}, false},
		{"list order changed", files{"envs/plain/all.yaml": cm + "---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: 443}, {port: 80}]}\n"}, false},
		{"string became a number", files{"envs/plain/all.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\ndata: {k: v, n: 1}\n---\n" + svc}, false},
		{"namespace changed", files{"envs/plain/all.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: y}\ndata: {k: v, n: \"1\"}\n---\n" + svc}, false},
		{"a key added", files{"envs/plain/all.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\ndata: {k: v, n: \"1\", extra: \"\"}\n---\n" + svc}, false},
		{"an object duplicated", files{"envs/plain/all.yaml": cm + "---\n" + svc + "---\n" + svc}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustRender(t, tt.fs, "envs/plain").Digest
			if (got == want) != tt.same {
				t.Errorf("digest %s, first rendering %s: same = %v, want %v", got, want, got == want, tt.same)
			}
		})
	}
}

func TestDigestOfOverlayIgnoresResourceOrder(t *testing.T) {
	a := mustRender(t, overlayRepo, "envs/staging").Digest
	b := mustRender(t, with(overlayRepo, files{"base/kustomization.yaml": "resources:\n- service.yaml\n- deployment.yaml\n"}), "envs/staging").Digest
	if a != b {
		t.Errorf("reordering the base's resources changed the digest: %s, %s", a, b)
	}
	c := mustRender(t, with(overlayRepo, files{"envs/staging/app.properties": "color=green\n"}), "envs/staging").Digest
	if a == c {
		t.Errorf("changing a generated ConfigMap's file left the digest at %s", a)
	}
}
