package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"ferry.dev/ferry/health"
)

// Options returns the health options h configures: its durations, its CEL
// checks compiled and its HTTP checks with their body patterns parsed. The
// error reports a Health that does not validate; a Health of a validated
// Config gives none.
func (h *Health) Options() (health.Options, error) {
	opts := health.Options{Timeout: h.Timeout, Interval: h.Interval, Soak: h.Soak}
	var errs []error
	for i := range h.Checks {
		check, err := health.CompileCheck(h.Checks[i].spec())
		if err != nil {
			for _, e := range split(err) {
				errs = append(errs, fmt.Errorf("health.checks[%d].%w", i, e))
			}
			continue
		}
		opts.Checks = append(opts.Checks, check)
	}
	for i, c := range h.HTTP {
		var body *regexp.Regexp
		if c.Body != "" {
			var err error
			if body, err = regexp.Compile(c.Body); err != nil {
				errs = append(errs, fmt.Errorf("health.http[%d].body: %w", i, err))
				continue
			}
		}
		opts.HTTP = append(opts.HTTP, health.HTTPCheck{URL: c.URL, Status: c.Status, Body: body, Timeout: c.Timeout})
	}
	if err := errors.Join(errs...); err != nil {
		return health.Options{}, err
	}
	return opts, nil
}

// spec is c as the health package takes it. An apiVersion that does not
// parse gives an empty version; validation reports it.
func (c *HealthCheck) spec() health.CheckSpec {
	s := health.CheckSpec{GroupKind: schema.GroupKind{Group: c.Group, Kind: c.Kind}, Current: c.Current, Failed: c.Failed}
	if c.APIVersion != "" {
		gv, _ := schema.ParseGroupVersion(c.APIVersion)
		s.GroupKind.Group, s.Version = gv.Group, gv.Version
	}
	return s
}

// validateChecks reports the problems of every CEL check, compiling its
// expressions as the health check will.
func (h *Health) validateChecks(at string, p *problems) {
	seen := map[schema.GroupKind]int{} // kind → index of its first check
	for i := range h.Checks {
		c := &h.Checks[i]
		cat := fmt.Sprintf("%s.checks[%d]", at, i)
		if c.validateKind(cat, p) {
			gk := c.spec().GroupKind
			if j, dup := seen[gk]; dup {
				p.add(cat+".kind", "duplicate of %s.checks[%d] (%s): give one check per kind", at, j, gk)
			} else {
				seen[gk] = i
			}
		}
		if c.Current == "" {
			p.add(cat+".current", "required: a CEL expression true once the object is ready, such as status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')")
		}
		_, err := health.CompileCheck(c.spec())
		for _, e := range split(err) {
			var ee *health.ExpressionError
			if errors.As(e, &ee) && ee.Expression != "" {
				p.add(cat+"."+ee.Field, "invalid CEL: %v", ee.Err)
			}
		}
	}
}

// validateKind checks that c names one kind: apiVersion or group, and kind.
// It reports whether it does.
func (c *HealthCheck) validateKind(at string, p *problems) bool {
	n := len(*p)
	switch {
	case c.APIVersion != "" && c.Group != "":
		p.add(at+".group", "set apiVersion or group, not both")
	case c.APIVersion == "" && c.Group == "":
		p.add(at+".apiVersion", "required: the kind's API version, such as example.com/v1, or group: example.com to read the preferred version")
	case c.APIVersion != "":
		gv, err := schema.ParseGroupVersion(c.APIVersion)
		switch {
		case err != nil:
			p.add(at+".apiVersion", "%q is not an API version: write group/version, such as example.com/v1", c.APIVersion)
		case gv.Group == "" && strings.Contains(gv.Version, "."):
			p.add(at+".apiVersion", "%q has no version: write %s/<version>, or group: %s", c.APIVersion, c.APIVersion, c.APIVersion)
		case gv.Group != "":
			checkGroup(at+".apiVersion", gv.Group, p)
		}
	default:
		checkGroup(at+".group", c.Group, p)
	}
	if c.Kind == "" {
		p.add(at+".kind", "required: the kind judged, such as Widget")
	}
	return len(*p) == n
}

// checkGroup checks that group is an API group: a DNS subdomain.
func checkGroup(path, group string, p *problems) {
	if msgs := validation.IsDNS1123Subdomain(group); len(msgs) > 0 {
		p.add(path, "%q is not an API group: %s", group, strings.Join(msgs, "; "))
	}
}

// validateHTTP reports the problems of every HTTP check.
func (h *Health) validateHTTP(at string, p *problems) {
	for i, c := range h.HTTP {
		cat := fmt.Sprintf("%s.http[%d]", at, i)
		switch {
		case c.URL == "":
			p.add(cat+".url", "required: the URL to GET, such as http://web.staging.svc/healthz")
		case !isHTTPURL(c.URL):
			p.add(cat+".url", "%q must be an http:// or https:// URL, such as http://web.staging.svc/healthz", c.URL)
		}
		if c.Status < 100 || c.Status > 599 {
			p.add(cat+".status", "%d is not an HTTP status code: use 100 to 599, such as %d", c.Status, DefaultHTTPStatus)
		}
		if c.Body != "" {
			if _, err := regexp.Compile(c.Body); err != nil {
				p.add(cat+".body", "invalid regular expression: %v", err)
			}
		}
		if c.Timeout <= 0 {
			p.add(cat+".timeout", "must be positive, such as %s", DefaultHTTPTimeout)
		} else if h.Timeout > 0 && c.Timeout >= h.Timeout {
			p.add(cat+".timeout", "%s must be shorter than health.timeout (%s)", c.Timeout, h.Timeout)
		}
	}
}

// split lists the errors joined in err.
func split(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}
