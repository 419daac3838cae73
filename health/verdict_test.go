package health

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestReasons(t *testing.T) {
	pending := func(name, msg string) ObjectStatus {
		return ObjectStatus{ID: id("Deployment", "apps", name), Status: status.InProgressStatus, Message: msg}
	}
	failed := func(name, msg string) ObjectStatus {
		return ObjectStatus{ID: id("Deployment", "apps", name), Status: status.FailedStatus, Message: msg}
	}
	role := ObjectStatus{
		ID:     object.ObjMetadata{Name: "view", GroupKind: schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}},
		Status: status.CurrentStatus,
	}
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name string
		got  string
		want string
	}{
		{
			name: "failure names the first failed object and counts the others",
			got:  failedReason([]ObjectStatus{failed("a", "pod a-1 container app: ErrImagePull"), failed("b", "ProgressDeadlineExceeded")}),
			want: "Deployment staging/a: pod a-1 container app: ErrImagePull (and 1 more failed)",
		},
		{
			name: "timeout lists three objects, one line each",
			got: timeoutReason(90*time.Second, []ObjectStatus{
				role, pending("a", "Updated: 1/2"), pending("b", "Ready:\n0/1"), pending("c", "x"), pending("d", "y"),
			}, nil, nil),
			want: "timed out after 1m30s, 4 of 5 not Current: Deployment staging/a InProgress: Updated: 1/2; " +
				"Deployment staging/b InProgress: Ready: 0/1; Deployment staging/c InProgress: x; and 1 more",
		},
		{
			name: "timeout keeps the last error when the listing is cut",
			got: timeoutReason(time.Minute, []ObjectStatus{pending("a", long), pending("b", long), pending("c", long)}, nil,
				errors.New("Deployment staging/a get: connection refused")),
			want: "; last error: Deployment staging/a get: connection refused",
		},
		{
			name: "timeout lists the failing HTTP checks after the objects",
			got: timeoutReason(time.Minute, []ObjectStatus{role, pending("a", "Updated: 1/2")}, []HTTPStatus{
				{URL: "http://web/healthz", OK: true, Message: "status 200"},
				{URL: "http://web/ready", Message: "status 503, want 200"},
				{URL: "http://api/ready", Message: "no answer within 5s"},
			}, nil),
			want: "timed out after 1m0s, 1 of 2 not Current: Deployment staging/a InProgress: Updated: 1/2, " +
				"2 of 3 HTTP checks failing: GET http://web/ready: status 503, want 200; GET http://api/ready: no answer within 5s",
		},
		{
			name: "cluster-scoped objects have no namespace",
			got:  describe(role.ID),
			want: "ClusterRole view",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.HasSuffix(tt.got, tt.want) {
				t.Errorf("reason = %q, want it to end with %q", tt.got, tt.want)
			}
			if n := len([]rune(tt.got)); n > maxReason || strings.Contains(tt.got, "\n") {
				t.Errorf("reason has %d runes or a newline, want one line of at most %d", n, maxReason)
			}
		})
	}
}
