package config

import "testing"

func TestAllowDestructive(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want bool
	}{
		{"    allowDestructive: true\n", true},
		{"", false},
	} {
		c, err := Parse([]byte("environments:\n  - name: staging\n    source: {url: https://git.example.com/a.git, branch: main, path: envs/staging}\n" + tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Environments[0].AllowDestructive; got != tc.want {
			t.Fatalf("allowDestructive = %v, want %v", got, tc.want)
		}
	}
	if _, err := Parse([]byte("environments:\n  - name: staging\n    source: {url: https://git.example.com/a.git, branch: main, path: envs/staging}\n    allowDestructive: maybe\n")); err == nil {
		t.Fatal("allowDestructive: maybe was accepted")
	}
}
