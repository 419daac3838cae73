package sandbox

import "testing"

// TestFindRevertReadsTheTrailer pins how the story finds ferry's revert of
// a failed commit: by the Ferry-Reverted trailer, not by the subject or a
// mention of the SHA.
func TestFindRevertReadsTheTrailer(t *testing.T) {
	const bad = "1111111111111111111111111111111111111111"
	record := func(sha, msg string) string { return sha + "\x1f" + msg + "\x1e\n" }
	tests := []struct {
		name, log, want string
	}{
		{"ferry's revert", record("aaaa", "Revert \"Release shop 1.2.0\"\n\nThis reverts commit "+bad+".\n\nFerry-Reverted: "+bad+"\nFerry-Reason: Deployment shop\n"), "aaaa"},
		{"a later commit first", record("bbbb", "Release shop 1.3.0\n") + record("aaaa", "Revert\n\nFerry-Reverted: "+bad+"\n"), "aaaa"},
		{"a person's revert without the trailer", record("cccc", "Revert \"Release shop 1.2.0\"\n\nThis reverts commit "+bad+".\n"), ""},
		{"ferry's revert of another commit", record("dddd", "Revert\n\nFerry-Reverted: 2222222222222222222222222222222222222222\n"), ""},
		{"several undone, bad among them", record("eeee", "Revert \"x\" and 1 earlier commits\n\nFerry-Reverted: 2222222222222222222222222222222222222222\nFerry-Reverted: "+bad+"\n"), "eeee"},
		{"no commits", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := findRevert(tt.log, bad)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("findRevert = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}
