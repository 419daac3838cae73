package reconciler

import (
	"testing"

	"ferry.dev/ferry/state"
)

func TestSumHops(t *testing.T) {
	tests := []struct {
		name string
		hops []state.Hop
		want string
	}{
		{"one hop is its own action", []state.Hop{{To: "production", Action: state.Promoted("production", "pull request #4")}},
			"promoted to production (pull request #4)"},
		{"every hop promoted", []state.Hop{{To: "prod-eu", Action: state.Promoted("prod-eu", "")}, {To: "prod-us", Action: state.Promoted("prod-us", "")}},
			"promoted to prod-eu, prod-us"},
		{"a stopped hop says where", []state.Hop{
			{To: "prod-eu", Action: state.Promoted("prod-eu", "")},
			{To: "prod-us", Action: state.Held("stopped at prod-eu: Deployment web: CrashLoopBackOff")}},
			"held: prod-eu: promoted to prod-eu; prod-us: held: stopped at prod-eu: Deployment web: CrashLoopBackOff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sumHops(tt.hops)
			if got.String() != tt.want {
				t.Errorf("sumHops = %q, want %q", got, tt.want)
			}
			var back state.Action
			if err := back.UnmarshalText([]byte(got.String())); err != nil || back.String() != tt.want {
				t.Errorf("the action does not survive the state ConfigMap: %q, %v", back, err)
			}
		})
	}
}
