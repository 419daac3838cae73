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

func TestTruncate(t *testing.T) {
	long := strings.Repeat("ü", 200)
	got := Truncate(long, 140)
	if utf8.RuneCountInString(got) != 140 || !strings.HasSuffix(got, Ellipsis) || !utf8.ValidString(got) {
		t.Fatalf("Truncate of 200 ü to 140 = %d runes %q", utf8.RuneCountInString(got), got)
	}
	if Truncate("a\nb", 5) != "a\nb" {
		t.Fatal("Truncate changed a short string")
	}
}

func TestScrub(t *testing.T) {
	cases := []struct{ in, want string }{
		{"clone https://user:pass@example.com/a.git failed", "clone https://[redacted]@example.com/a.git failed"},
		{"ssh://git@example.com/a.git", "ssh://git@example.com/a.git"},
		{"token s3cret leaked", "token [redacted] leaked"},
	}
	for _, tc := range cases {
		if got := Scrub(tc.in, "s3cret", "x"); got != tc.want {
			t.Errorf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsHex(t *testing.T) {
	for s, want := range map[string]bool{"abc123": true, "ABCDEF": true, "": false, "xyz": false, "12 3": false} {
		if IsHex(s) != want {
			t.Errorf("IsHex(%q) = %v", s, !want)
		}
	}
}
