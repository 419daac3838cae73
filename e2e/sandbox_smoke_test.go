package e2e

import (
	"fmt"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/sandbox"
)

// TestSmokeGitRoundTrip pushes with the git CLI and reads the commit back
// with go-git over smart HTTP and token auth.
func TestSmokeGitRoundTrip(t *testing.T) {
	ctx := t.Context()
	repo := "smoke-git"
	_, sha := newRepo(t, repo, map[string]string{"envs/staging/cm.yaml": "kind: ConfigMap\n"}, "Add staging")

	r, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
		URL:  forge.CloneURL(repo),
		Auth: &githttp.BasicAuth{Username: forge.User, Password: forge.Token},
	})
	if err != nil {
		t.Fatalf("go-git clone %s: %v", forge.CloneURL(repo), err)
	}
	head, err := r.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil {
		t.Fatal(err)
	}
	if head.Hash().String() != sha {
		t.Fatalf("main = %s, pushed %s", head.Hash(), sha)
	}
	commit, err := r.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	f, err := commit.File("envs/staging/cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := f.Contents(); body != "kind: ConfigMap\n" {
		t.Fatalf("content = %q", body)
	}

	// A wrong token is refused.
	_, err = git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
		URL:  forge.CloneURL(repo),
		Auth: &githttp.BasicAuth{Username: forge.User, Password: "wrong"},
	})
	if err == nil {
		t.Fatal("clone with a wrong token succeeded")
	}
}

// TestSmokeCommitStatus posts a commit status and reads it back.
func TestSmokeCommitStatus(t *testing.T) {
	repo := "smoke-status"
	_, sha := newRepo(t, repo, map[string]string{"README.md": "hi\n"}, "Initial")
	_, _, err := forge.Client.CreateStatus(forge.User, repo, sha, gitea.CreateStatusOption{
		State: gitea.StatusSuccess, Context: "ferry/staging", Description: "healthy at " + sha[:7], TargetURL: "http://127.0.0.1/ferry",
	})
	if err != nil {
		t.Fatal(err)
	}
	statuses, _, err := forge.Client.ListStatuses(forge.User, repo, sha, gitea.ListStatusesOption{})
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 1 || statuses[0].Context != "ferry/staging" || statuses[0].State != gitea.StatusSuccess ||
		statuses[0].Description != "healthy at "+sha[:7] {
		t.Fatalf("statuses = %+v", statuses)
	}
}

// TestSmokePullRequests opens and merges pull requests with each merge style.
func TestSmokePullRequests(t *testing.T) {
	ctx := t.Context()
	repo := "smoke-pr"
	wc, _ := newRepo(t, repo, map[string]string{"README.md": "hi\n"}, "Initial")
	for _, style := range []gitea.MergeStyle{gitea.MergeStyleMerge, gitea.MergeStyleSquash, gitea.MergeStyleRebase} {
		branch := "change-" + string(style)
		if _, err := wc.Git(ctx, "checkout", "--quiet", "-B", branch, "origin/main"); err != nil {
			t.Fatal(err)
		}
		if _, err := wc.CommitAndPush(ctx, map[string]string{string(style) + ".txt": "x\n"}, "Add "+string(style)); err != nil {
			t.Fatal(err)
		}
		if err := wc.Push(ctx, "HEAD:refs/heads/"+branch); err != nil {
			t.Fatal(err)
		}
		pr, err := forge.OpenPullRequest(repo, branch, "main", "Add "+string(style))
		if err != nil {
			t.Fatal(err)
		}
		merged, err := forge.MergePullRequest(repo, pr.Index, style)
		if err != nil {
			t.Fatal(err)
		}
		if !merged.HasMerged || merged.MergedCommitID == nil {
			t.Fatalf("%s: pull request not merged: %+v", style, merged)
		}
		if _, err := wc.Git(ctx, "fetch", "--quiet", "origin"); err != nil {
			t.Fatal(err)
		}
		if _, err := wc.Git(ctx, "cat-file", "-e", "origin/main:"+string(style)+".txt"); err != nil {
			t.Fatalf("%s: file not on main after merge: %v", style, err)
		}
	}
}

// TestSmokeDeploymentRollsOut shows a healthy rollout on simulated nodes.
func TestSmokeDeploymentRollsOut(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	dep := deployment(ns, "web", 3, nil)
	if _, err := cluster.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() (bool, string) {
		d, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && d.Status.AvailableReplicas == 3 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("status %+v", d.Status)
	})
	pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("%d pods, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName != "kwok-node-0" {
			t.Fatalf("pod %s: phase %s on node %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		}
	}
}

// TestSmokeFailureStages shows each failure stage on a Deployment's pods.
func TestSmokeFailureStages(t *testing.T) {
	cases := []struct {
		mode   string
		reason string // container waiting reason; "" means running but not ready
	}{
		{sandbox.FailCrashLoop, "CrashLoopBackOff"},
		{sandbox.FailImagePull, "ImagePullBackOff"},
		{sandbox.FailNeverReady, ""},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			ctx := t.Context()
			ns := newNamespace(t)
			dep := deployment(ns, "bad", 1, map[string]string{sandbox.FailAnnotation: tc.mode})
			if _, err := cluster.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var restarts int32
			eventually(t, time.Minute, func() (bool, string) {
				pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=bad"})
				if err != nil || len(pods.Items) == 0 {
					return false, fmt.Sprintf("no pods yet (%v)", err)
				}
				p := pods.Items[0]
				if len(p.Status.ContainerStatuses) == 0 {
					return false, "no container status yet"
				}
				cs := p.Status.ContainerStatuses[0]
				if cs.Ready {
					return false, "container became ready"
				}
				switch {
				case tc.reason == "" && cs.State.Running != nil && p.Status.Phase == corev1.PodRunning:
					return true, ""
				case tc.reason != "" && cs.State.Waiting != nil && cs.State.Waiting.Reason == tc.reason:
					restarts = cs.RestartCount
					return true, ""
				}
				return false, fmt.Sprintf("container state %+v", cs.State)
			})
			if tc.mode != sandbox.FailCrashLoop {
				return
			}
			// A crash loop keeps raising restartCount and never turns ready.
			eventually(t, 30*time.Second, func() (bool, string) {
				pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=bad"})
				if err != nil || len(pods.Items) == 0 {
					return false, fmt.Sprint(err)
				}
				cs := pods.Items[0].Status.ContainerStatuses[0]
				if cs.Ready {
					t.Fatal("crash-looping container became ready")
				}
				return cs.RestartCount > restarts, fmt.Sprintf("restartCount %d", cs.RestartCount)
			})
		})
	}
}

func deployment(ns, name string, replicas int32, podAnnotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
			},
		},
	}
}
