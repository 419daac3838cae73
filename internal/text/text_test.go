package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOneLine(t *testing.T) {
	cases := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short stays", "ok", 10, "ok"},
		{"whitespace collapses", "a\n\tb   c\r\n", 10, "a b c"},
		{"exactly max", "abcde", 5, "abcde"},
		{"cut with ellipsis", "abcdef", 5, "abcd…"},
		{"multi-byte not split", "ééééé-é", 4, "ééé…"},
		{"emoji counted once", "🚀🚀🚀🚀", 3, "🚀🚀…"},
		{"CJK", "部署失败了因为", 5, "部署失败…"},
		{"max one", "abc", 1, "…"},
		{"max zero", "abc", 0, ""},
		{"empty", "   \n ", 5, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := OneLine(tc.in, tc.max)
			if got != tc.want {
				t.Fatalf("OneLine(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if !utf8.ValidString(got) || strings.ContainsAny(got, "\n\t") || utf8.RuneCountInString(got) > max(tc.max, 0) {
				t.Fatalf("OneLine(%q, %d) = %q: not one valid line of at most %d characters", tc.in, tc.max, got, tc.max)
			}
		})
	}
}

func TestIsHex(t *testing.T) {
	for s, want := range map[string]bool{"abc123": true, "ABCDEF": true, "": false, "xyz": false, "12 3": false} {
		if IsHex(s) != want {
			t.Errorf("IsHex(%q) = %v", s, !want)
		}
	}
}

// testToken stands for a forge token in messages.
const testToken = "ghp_0123456789abcdef"

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 140, "short"},
		{strings.Repeat("a", 140), 140, strings.Repeat("a", 140)},
		{strings.Repeat("a", 141), 140, strings.Repeat("a", 139) + "…"},
		{strings.Repeat("日", 150), 140, strings.Repeat("日", 139) + "…"},
		{"abc", 0, ""},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"fetch https://ferry:" + testToken + "@git.example.com/a.git: 401": "fetch https://[redacted]@git.example.com/a.git: 401",
		"clone https://" + testToken + "@github.com/a/b":                   "clone https://[redacted]@github.com/a/b",
		"ssh://git@github.com/a/b.git":                                     "ssh://git@github.com/a/b.git",
		"mail me at dev@example.com":                                       "mail me at dev@example.com",
		"Bearer " + testToken:                                              "Bearer [redacted]",
	} {
		if got := Scrub(in, testToken, "a"); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
}
