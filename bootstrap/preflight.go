package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"ferry.dev/ferry/cluster"
	"ferry.dev/ferry/manifests"
	"ferry.dev/ferry/state"
)

// Problem is one failed preflight check: what failed, why, and the fix.
type Problem struct {
	// Check names the check: options, cluster, git, push, install or
	// permissions.
	Check string
	// Err is what went wrong.
	Err error
	// Fix says what to do about it.
	Fix string
}

// Error returns "check: err" and the fix on the next line.
func (p *Problem) Error() string { return fmt.Sprintf("%s: %v\n  fix: %s", p.Check, p.Err, p.Fix) }

// Unwrap returns Err.
func (p *Problem) Unwrap() error { return p.Err }

// Timeouts of the checks, so that an address that swallows packets fails
// the preflight instead of hanging it. Reading the install's directory
// clones the branch, which takes longer on a large repository.
const (
	checkTimeout = 30 * time.Second
	cloneTimeout = 3 * time.Minute
)

// plan is what bootstrap will write, worked out by the preflight.
type plan struct {
	checkout *checkout
	files    map[string][]byte
	objects  []*unstructured.Unstructured
	image    string
	first    bool // no install committed yet
}

// preflight runs every check that can run and reports all failures at once;
// it changes nothing. Checks that depend on a failed one are not run.
func (r *run) preflight(ctx context.Context) error {
	var problems []error
	fail := func(p *Problem) {
		fmt.Fprintf(r.out, "  FAIL %s: %s\n", p.Check, strings.ReplaceAll(p.Err.Error(), "\n", "\n  "))
		problems = append(problems, p)
	}
	if err := r.opts.validate(); err != nil {
		fail(&Problem{Check: "options", Err: err, Fix: "correct the flags named above"})
		return fmt.Errorf("%w:\n%w", ErrPreflight, errors.Join(problems...))
	}
	r.repo = newRemote(r.opts.Repo, r.opts.Credentials)
	clusterOK := r.check(ctx, fail, checkTimeout, r.checkCluster)
	gitOK := r.check(ctx, fail, checkTimeout, r.checkGit)
	planOK := gitOK && r.check(ctx, fail, cloneTimeout, r.checkPlan)
	if clusterOK && planOK {
		r.check(ctx, fail, checkTimeout, r.checkPermissions)
	}
	if gitOK {
		r.check(ctx, fail, checkTimeout, r.checkPush)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w:\n%w", ErrPreflight, errors.Join(problems...))
	}
	return nil
}

// check runs one check within timeout, prints its outcome and reports
// whether it passed.
func (r *run) check(ctx context.Context, fail func(*Problem), timeout time.Duration, do func(context.Context) (string, *Problem)) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, p := do(ctx)
	if p != nil {
		fail(p)
		return false
	}
	fmt.Fprintf(r.out, "  ok   %s\n", msg)
	return true
}

// validate checks the options that need no network.
func (o Options) validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(o.Environment); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--env %q: %s (e.g. the cluster's name)", o.Environment, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
	} else if o.Namespace == "default" || strings.HasPrefix(o.Namespace, "kube-") {
		errs = append(errs, fmt.Errorf("--namespace %s: a system namespace; ferry needs one of its own (uninstall deletes it)", o.Namespace))
	}
	u, err := url.Parse(o.Repo)
	switch {
	case o.Repo == "":
		errs = append(errs, errors.New("--repo: required, the repository's HTTPS URL"))
	case err != nil || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, fmt.Errorf("--repo %s: bootstrap pushes over HTTPS; give the https:// URL", o.Repo))
	case u.User != nil:
		errs = append(errs, errors.New("--repo: the URL carries credentials, which would be committed in ferry.yaml; pass them with --username, --token-file or --password-file"))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("--repo %s: no host", o.Repo))
	}
	if ref := plumbing.NewBranchReferenceName(o.Branch); o.Branch == "" || ref.Validate() != nil {
		errs = append(errs, fmt.Errorf("--branch %q: not a valid branch name", o.Branch))
	}
	if p := o.InstallPath(); path.IsAbs(p) || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		errs = append(errs, fmt.Errorf("--path %q: want a directory inside the repository, e.g. clusters/%s/ferry", o.Path, o.Environment))
	}
	c := o.Credentials
	switch {
	case c.Token != "" && c.Password != "":
		errs = append(errs, errors.New("credentials: both a token and a password are given; keep one"))
	case c.Token == "" && c.Password == "":
		errs = append(errs, errors.New("credentials: none given; bootstrap pushes, so pass --token-file (or $FERRY_GIT_TOKEN), or --username with --password-file"))
	case c.Password != "" && c.Username == "":
		errs = append(errs, errors.New("credentials: a password without --username"))
	case c.Token != "" && c.Username != "":
		// ferry sends a token with the user name "git"; a forge that wants
		// the real user name takes the token as a password.
		errs = append(errs, errors.New("credentials: --username with a token; ferry sends tokens as user git, so pass the token with --username and --password-file instead"))
	}
	return errors.Join(errs...)
}

// checkCluster connects to the cluster and makes the clients.
func (r *run) checkCluster(ctx context.Context) (string, *Problem) {
	fix := "check --kubeconfig and --context (or $KUBECONFIG), and that the API server is up"
	clients, err := kubernetes.NewForConfig(r.cfg)
	if err != nil {
		return "", &Problem{Check: "cluster", Err: err, Fix: fix}
	}
	v, err := clients.Discovery().ServerVersionWithContext(ctx)
	if err != nil {
		return "", &Problem{Check: "cluster", Err: fmt.Errorf("%s: %w", r.cfg.Host, err), Fix: fix}
	}
	c, err := cluster.NewClient(r.cfg)
	if err != nil {
		return "", &Problem{Check: "cluster", Err: err, Fix: fix}
	}
	r.clients, r.client = clients, c
	return fmt.Sprintf("cluster %s reachable (Kubernetes %s)", r.cfg.Host, v.GitVersion), nil
}

// checkGit lists the remote's branches with the credentials.
func (r *run) checkGit(ctx context.Context) (string, *Problem) {
	tip, err := r.repo.tip(ctx, r.opts.Branch)
	r.tip = tip
	if err != nil {
		return "", &Problem{Check: "git", Err: fmt.Errorf("%s: %w", r.opts.Repo, err), Fix: gitFix(err, r.opts.Repo)}
	}
	if tip.IsZero() {
		return fmt.Sprintf("git %s readable (branch %s does not exist yet and will be created)", r.opts.Repo, r.opts.Branch), nil
	}
	return fmt.Sprintf("git %s readable (branch %s at %s)", r.opts.Repo, r.opts.Branch, state.Short(tip.String())), nil
}

// checkPush pushes and deletes a temporary ref.
func (r *run) checkPush(ctx context.Context) (string, *Problem) {
	if err := r.repo.probePush(ctx, r.opts.Author); err != nil {
		fix := gitFix(err, r.opts.Repo)
		if !errors.Is(err, transport.ErrAuthenticationRequired) {
			fix = fmt.Sprintf("the credentials may read %s but not push to it: give the token (or user) write access to the repository, e.g. a write:repository or repo scope and the Write role", r.opts.Repo)
		}
		return "", &Problem{Check: "push", Err: fmt.Errorf("%s: %w", r.opts.Repo, err), Fix: fix}
	}
	return fmt.Sprintf("push to %s allowed (a temporary ref was pushed and deleted)", r.opts.Repo), nil
}

// gitFix says what to do about a failed git operation.
func gitFix(err error, repo string) string {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fmt.Sprintf("%s refused the credentials: check the token (or user and password) and that it has not expired", repo)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Sprintf("the credentials may not access %s: give them read and write access to it", repo)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Sprintf("check the URL; create the repository %s if it does not exist, and let the credentials see it", repo)
	default:
		return fmt.Sprintf("check that %s is the repository's HTTPS URL and that this machine reaches it", repo)
	}
}

// checkPlan reads what the branch holds at the install path and works out
// the files to commit and the objects to apply.
func (r *run) checkPlan(ctx context.Context) (string, *Problem) {
	dir := r.opts.InstallPath()
	problem := func(err error, fix string) (string, *Problem) {
		return "", &Problem{Check: "install", Err: err, Fix: fix}
	}
	co, err := r.repo.checkout(ctx, r.opts.Branch, r.tip)
	if err != nil {
		return problem(fmt.Errorf("clone %s branch %s: %w", r.opts.Repo, r.opts.Branch, err), gitFix(err, r.opts.Repo))
	}
	p := &plan{checkout: co, image: r.opts.Image}
	cfgYAML, hasCfg, err := co.read(path.Join(dir, manifests.ConfigFile))
	if err != nil {
		return problem(err, "check the repository")
	}
	kust, hasKust, err := co.read(path.Join(dir, manifests.Kustomization))
	if err != nil {
		return problem(err, "check the repository")
	}
	p.first = !hasKust
	if p.image == "" && hasKust {
		if p.image, err = committedImage(kust); err != nil {
			return problem(fmt.Errorf("%s/%s: %w", dir, manifests.Kustomization, err), "fix the file in git, or pass --image")
		}
	}
	if p.image == "" {
		p.image = manifests.DefaultImage
	}
	if !hasCfg {
		cfgYAML = configYAML(r.opts)
	}
	if err := checkConfig(cfgYAML, r.opts); err != nil {
		where := "the ferry.yaml bootstrap writes"
		if hasCfg {
			where = path.Join(dir, manifests.ConfigFile)
		}
		return problem(fmt.Errorf("%s: %w", where, err), "fix ferry.yaml in git (bootstrap keeps an existing one), or check --namespace, --branch and --path")
	}
	mopts := manifests.Options{Namespace: r.opts.Namespace, Image: p.image, ConfigYAML: cfgYAML, Replicas: r.opts.Replicas}
	if p.files, err = manifests.Files(mopts); err != nil {
		return problem(err, "check --image and --namespace")
	}
	if p.objects, err = manifests.Render(ctx, mopts); err != nil {
		return problem(err, "check --image and --namespace")
	}
	r.plan = p
	what := "kept"
	if !hasCfg {
		what = "written"
	}
	return fmt.Sprintf("install %s: image %s, %d objects, ferry.yaml %s", dir, p.image, len(p.objects), what), nil
}

// access is one permission: verb on group/resource in namespace ("" for
// cluster-wide).
type access struct {
	verb, group, resource, namespace string
}

func (a access) String() string { return a.verb + " " + a.where() }

// where names the resource and scope: "deployments.apps in namespace x".
func (a access) where() string {
	res := a.resource
	switch {
	case a.resource == "*" && a.group == "*":
		res = "every resource"
	case a.group != "":
		res += "." + a.group
	}
	if a.namespace == "" {
		return res + " (cluster-wide)"
	}
	return res + " in namespace " + a.namespace
}

// describe lists accesses one resource a line, with its verbs:
// "deployments.apps in namespace x: get, create, patch".
func describe(list []access) string {
	var order []string
	verbs := map[string][]string{}
	for _, a := range list {
		w := a.where()
		if _, ok := verbs[w]; !ok {
			order = append(order, w)
		}
		verbs[w] = append(verbs[w], a.verb)
	}
	var b strings.Builder
	for _, w := range order {
		fmt.Fprintf(&b, "\n    %s: %s", w, strings.Join(verbs[w], ", "))
	}
	return b.String()
}

// checkPermissions asks the API server (SelfSubjectAccessReview) whether
// the user may do everything bootstrap does: apply every install object,
// write the credential Secret, and grant the install's RBAC, either by
// holding every permission it grants or through escalate and bind.
func (r *run) checkPermissions(ctx context.Context) (string, *Problem) {
	needed, grants, err := r.neededAccess()
	if err != nil {
		return "", &Problem{Check: "permissions", Err: err, Fix: "check that the cluster serves the kinds of the install (apps/v1, rbac/v1, policy/v1)"}
	}
	denied, err := r.denied(ctx, needed)
	if err != nil {
		return "", &Problem{Check: "permissions", Err: err, Fix: "check the cluster connection"}
	}
	deniedGrants, err := r.denied(ctx, grants)
	if err != nil {
		return "", &Problem{Check: "permissions", Err: err, Fix: "check the cluster connection"}
	}
	var msgs []string
	if len(denied) > 0 {
		msgs = append(msgs, "the cluster user may not:"+describe(denied))
	}
	if len(deniedGrants) > 0 {
		// Without every permission the roles grant, RBAC still lets a
		// user create and bind them with escalate and bind.
		escalation := []access{
			{"escalate", rbacv1.GroupName, "clusterroles", ""}, {"bind", rbacv1.GroupName, "clusterroles", ""},
			{"escalate", rbacv1.GroupName, "roles", r.opts.Namespace}, {"bind", rbacv1.GroupName, "roles", r.opts.Namespace},
		}
		deniedEscalation, err := r.denied(ctx, escalation)
		if err != nil {
			return "", &Problem{Check: "permissions", Err: err, Fix: "check the cluster connection"}
		}
		if len(deniedEscalation) > 0 {
			msgs = append(msgs, "ferry's roles grant what the cluster user does not hold, and it lacks escalate and bind on roles and clusterroles; it lacks:"+describe(deniedGrants))
		}
	}
	if len(msgs) > 0 {
		return "", &Problem{Check: "permissions", Err: errors.New(strings.Join(msgs, "\n")),
			Fix: "run bootstrap as a cluster administrator (it creates a namespace, cluster RBAC and a Deployment, once), or grant these permissions"}
	}
	return fmt.Sprintf("permissions: %d checked with SelfSubjectAccessReview", len(needed)+len(grants)), nil
}

// neededAccess lists the permissions bootstrap uses and those the install's
// roles grant.
func (r *run) neededAccess() (needed, grants []access, err error) {
	seen := map[access]bool{}
	add := func(list *[]access, a access) {
		if !seen[a] {
			seen[a] = true
			*list = append(*list, a)
		}
	}
	for _, o := range r.plan.objects {
		gvk := o.GroupVersionKind()
		m, err := r.client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", gvk.Kind, err)
		}
		// Server-side apply reads (dry-run diff), patches, and creates what
		// is missing.
		for _, verb := range []string{"get", "create", "patch"} {
			add(&needed, access{verb, m.Resource.Group, m.Resource.Resource, o.GetNamespace()})
		}
		if err := addGrants(o, func(a access) { add(&grants, a) }); err != nil {
			return nil, nil, err
		}
	}
	for _, verb := range []string{"get", "create", "update"} {
		add(&needed, access{verb, "", "secrets", r.opts.Namespace})
	}
	return needed, grants, nil
}

// addGrants passes every permission a Role or ClusterRole grants to add.
func addGrants(o *unstructured.Unstructured, add func(access)) error {
	if o.GroupVersionKind().Group != rbacv1.GroupName || (o.GetKind() != "ClusterRole" && o.GetKind() != "Role") {
		return nil
	}
	var role rbacv1.ClusterRole // a Role's rules have the same form
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
		return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
	}
	for _, rule := range role.Rules {
		for _, verb := range rule.Verbs {
			for _, group := range rule.APIGroups {
				for _, res := range rule.Resources {
					add(access{verb, group, res, o.GetNamespace()})
				}
			}
		}
	}
	return nil
}

// denied asks about every access, a few at a time, and returns the denied
// ones in the order of list.
func (r *run) denied(ctx context.Context, list []access) ([]access, error) {
	allowed := make([]bool, len(list))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, a := range list {
		g.Go(func() error {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace,
				},
			}}
			res, err := r.clients.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("access review %s: %w", a, err)
			}
			allowed[i] = res.Status.Allowed // each goroutine writes its own element
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []access
	for i, a := range list {
		if !allowed[i] {
			out = append(out, a)
		}
	}
	return out, nil
}
