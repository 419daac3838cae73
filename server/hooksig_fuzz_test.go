package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// FuzzVerifySignature pins the webhook signature checks of every forge:
// the right signature of the body passes, and a header passes only if it
// is that signature (hex case and surrounding space aside), whatever the
// body, secret and header hold.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main"}`), []byte("s3cret"), "sha256=00")
	f.Add([]byte{}, []byte{}, "")
	f.Add([]byte("x"), []byte("k"), "sha256="+strings.Repeat("a", 64))
	f.Add([]byte("x"), []byte("k"), " "+strings.Repeat("0", 64)+" ")
	f.Fuzz(func(t *testing.T, body, secret []byte, header string) {
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		sum := m.Sum(nil)
		right := hex.EncodeToString(sum)
		is := func(sig string) bool {
			got, err := hex.DecodeString(strings.TrimSpace(sig))
			return err == nil && hmac.Equal(got, sum)
		}
		gh := http.Header{}
		gh.Set("X-Hub-Signature-256", "sha256="+right)
		gt := http.Header{}
		gt.Set("X-Gitea-Signature", right)
		if !verifyGitHub(gh, body, secret) || !verifyGitea(gt, body, secret) {
			t.Fatal("the right signature is refused")
		}
		gh.Set("X-Hub-Signature-256", header)
		sig, prefixed := strings.CutPrefix(gh.Get("X-Hub-Signature-256"), "sha256=")
		if verifyGitHub(gh, body, secret) != (prefixed && is(sig)) {
			t.Fatalf("GitHub header %q: verify = %v", header, !(prefixed && is(sig)))
		}
		gt.Set("X-Gitea-Signature", header)
		if verifyGitea(gt, body, secret) != is(gt.Get("X-Gitea-Signature")) {
			t.Fatalf("Gitea header %q: verify = %v", header, !is(header))
		}
		gl := http.Header{}
		gl.Set("X-Gitlab-Token", header)
		want := gl.Get("X-Gitlab-Token") != "" && gl.Get("X-Gitlab-Token") == string(secret)
		if verifyGitLab(gl, body, secret) != want {
			t.Fatalf("GitLab token %q, secret %q: verify = %v", header, secret, !want)
		}
	})
}
