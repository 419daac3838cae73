// Package faults is ferry's one vocabulary for errors where the loop
// decides: an error is Transient (the network or the API server failed;
// the same request may succeed later), Terminal (a credential, a permission
// or the configuration is wrong; a person must fix it) or a Verdict (the
// commit is wrong: it does not render, an object is invalid, it is not
// healthy). Only verdicts decide what happens to a commit.
//
// Classify reads the kinds of errors ferry meets from the Kubernetes API
// (apimachinery's StatusError), the network (syscall errors, io.EOF,
// net.Error timeouts), and ferry's own packages, whose sentinels carry
// their kind (New, Mark) or say whether they are transient (a Transient()
// bool method, as forge.ForgeError has). It imports no ferry package.
package faults

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kind is how the loop answers an error.
type Kind int

// Kinds, in increasing order of weight: where one error joins several,
// the heaviest known kind among them is the kind of the whole.
const (
	// Unknown is an error none of the rules knows; the caller picks the
	// kind its step defaults to.
	Unknown Kind = iota
	// Transient errors retry the step with backoff.
	Transient
	// Terminal errors stop the environment until a person fixes the cause.
	Terminal
	// Verdict errors are the commit's fault: they are recorded and acted on.
	Verdict
)

// String is the kind's name.
func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Terminal:
		return "terminal"
	case Verdict:
		return "verdict"
	}
	return "unknown"
}

// kindError is an error that carries its kind: a sentinel made by New, or
// an error marked by Mark.
type kindError struct {
	kind Kind
	msg  string
	err  error
}

func (e *kindError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.err.Error()
}

func (e *kindError) Unwrap() error { return e.err }

// New returns a sentinel error of kind with message msg, for errors.Is.
func New(kind Kind, msg string) error { return &kindError{kind: kind, msg: msg} }

// Mark returns err marked with kind, which overrides whatever err wraps;
// nil stays nil.
func Mark(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// Classify returns the kind of err, Unknown when no rule knows it (and
// for nil). A marked or sentinel error decides for everything it wraps; an
// error joining several (errors.Join, fmt.Errorf with several %w) is the
// heaviest of their kinds.
func Classify(err error) Kind {
	if err == nil {
		return Unknown
	}
	if k := own(err); k != Unknown {
		return k
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		k := Unknown
		for _, e := range u.Unwrap() {
			k = max(k, Classify(e))
		}
		return k
	case interface{ Unwrap() error }:
		return Classify(u.Unwrap())
	}
	return leafText(err.Error())
}

// Of is Classify with def for errors no rule knows.
func Of(err error, def Kind) Kind {
	if k := Classify(err); k != Unknown {
		return k
	}
	return def
}

// IsTransient reports whether err is Transient.
func IsTransient(err error) bool { return Classify(err) == Transient }

// own is the kind err itself says, without looking at what it wraps.
func own(err error) Kind {
	switch e := err.(type) {
	case *kindError:
		return e.kind
	case apierrors.APIStatus:
		return status(e.Status())
	case interface{ Transient() bool }:
		if e.Transient() {
			return Transient
		}
		return Terminal
	case syscall.Errno:
		switch e {
		case syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
			syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN:
			return Transient
		}
	case *net.DNSError, *net.OpError:
		return Transient
	}
	switch {
	case err == io.EOF, err == io.ErrUnexpectedEOF, err == context.DeadlineExceeded:
		// Why a deadline is transient: the loop looks at its own context
		// first, so a deadline here is one request's (TestClassify).
		return Transient
	}
	if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
		return Transient
	}
	return Unknown
}

// rbacEscalation is how the API server refuses a Role or binding that
// grants more than the requester holds.
const rbacEscalation = "is attempting to grant RBAC permissions not currently held"

// status classifies an answer of the Kubernetes API server.
func status(s metav1.Status) Kind {
	switch s.Reason {
	case metav1.StatusReasonServiceUnavailable, metav1.StatusReasonTooManyRequests, metav1.StatusReasonTimeout,
		metav1.StatusReasonServerTimeout, metav1.StatusReasonInternalError, metav1.StatusReasonConflict,
		metav1.StatusReasonGone:
		return Transient
	case metav1.StatusReasonForbidden:
		if strings.Contains(s.Message, rbacEscalation) {
			// The commit asks for more than its environment holds: its
			// content is at fault, as with an object out of scope, not
			// ferry's RBAC (TestClassify "RBAC escalation").
			return Verdict
		}
		return Terminal
	case metav1.StatusReasonUnauthorized:
		return Terminal
	case metav1.StatusReasonInvalid, metav1.StatusReasonBadRequest, metav1.StatusReasonNotFound,
		metav1.StatusReasonAlreadyExists, metav1.StatusReasonRequestEntityTooLarge,
		metav1.StatusReasonUnsupportedMediaType, metav1.StatusReasonMethodNotAllowed, metav1.StatusReasonNotAcceptable:
		return Verdict
	}
	switch c := int(s.Code); {
	case c >= 500, c == http.StatusTooManyRequests, c == http.StatusRequestTimeout:
		return Transient
	case c == http.StatusUnauthorized, c == http.StatusForbidden:
		return Terminal
	case c >= 400:
		return Verdict
	}
	return Unknown
}

// transientTexts are the texts of network failures that reach ferry
// flattened into a string by a library, without the error they came from.
var transientTexts = []string{
	"connection reset by peer", "connection refused", "broken pipe", "i/o timeout",
	"http2: client connection lost", "use of closed network connection", "TLS handshake timeout",
	"server closed idle connection", "unexpected EOF", "no route to host",
}

func leafText(msg string) Kind {
	for _, t := range transientTexts {
		if strings.Contains(msg, t) {
			return Transient
		}
	}
	return Unknown
}
