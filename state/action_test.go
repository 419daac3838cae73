package state

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestActionReadsLegacyText pins that state ConfigMaps written while
// actions were plain strings read into the same typed actions, and that
// writing them back gives the same text.
func TestActionReadsLegacyText(t *testing.T) {
	cases := []struct {
		text string
		want Action
	}{
		{"", Action{}},
		{"none", None()},
		{"promoted to production", Promoted("production", "")},
		{"promoted to production (pull request #12)", Promoted("production", "pull request #12")},
		{"reverted by abc1234", Reverted("abc1234")},
		{"held: onFailure is hold", Held("onFailure is hold")},
		{"held: production has 1234567 (Hotfix (urgent)) that main lacks", Held("production has 1234567 (Hotfix (urgent)) that main lacks")},
		{"stalled: the revert abc1234 failed too (x); ferry does not revert a revert", Stalled("the revert abc1234 failed too (x); ferry does not revert a revert")},
		{"superseded by a newer commit", Superseded()},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			legacy := `{"commit":"c1","outcome":"Healthy","started":"0001-01-01T00:00:00Z","finished":"0001-01-01T00:00:00Z"` +
				map[bool]string{true: "", false: `,"action":` + quote(tc.text)}[tc.text == ""] + `}`
			var v Verdict
			if err := json.Unmarshal([]byte(legacy), &v); err != nil {
				t.Fatalf("read %s: %v", legacy, err)
			}
			if v.Action != tc.want {
				t.Fatalf("read %q as %#v, want %#v", tc.text, v.Action, tc.want)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != legacy {
				t.Fatalf("wrote back\n%s\nwant\n%s", out, legacy)
			}
		})
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestActionRejectsUnknownText(t *testing.T) {
	var a Action
	err := a.UnmarshalText([]byte("exploded"))
	if err == nil || !strings.Contains(err.Error(), `"exploded"`) {
		t.Fatalf("unknown action text: %v", err)
	}
}

func TestReverted(t *testing.T) {
	a := Reverted("0123456789abcdef0123456789abcdef01234567")
	if a.String() != "reverted by 0123456" || a.Kind != ActionReverted {
		t.Fatalf("Reverted = %#v %q", a, a)
	}
}

func TestSameCommit(t *testing.T) {
	full := "0123456789abcdef0123456789abcdef01234567"
	for abbrev, want := range map[string]bool{"0123": true, "0123456789ABCDEF": true, "012": false, "0124": false, "zz23": false, full: true, full + "0": false} {
		if got := SameCommit(full, abbrev); got != want {
			t.Errorf("SameCommit(%q) = %v, want %v", abbrev, got, want)
		}
	}
}
