package forge

import (
	"strings"
	"testing"
)

func FuzzParseRepo(f *testing.F) {
	for _, s := range []string{"https://github.com/acme/app.git", "git@github.com:acme/app.git", "ssh://git@h:22/a/b", "a:b/c", "::", "https://h//x//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, url string) {
		r, err := ParseRepo(url)
		if err != nil {
			return
		}
		if r.Owner == "" || r.Name == "" || strings.Contains(r.Name, "/") || strings.HasSuffix(r.Name, ".git") && r.Name != ".git" {
			t.Fatalf("%q: %+v", url, r)
		}
	})
}
