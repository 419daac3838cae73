package health

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"ferry.dev/ferry/internal/text"
)

// celVariables are the top-level fields of an object an expression sees as
// variables of the same name (see CheckSpec).
var celVariables = []string{"metadata", "spec", "status"}

const (
	// celObject is the variable holding the whole object.
	celObject = "object"
	// celCostLimit bounds the work of one evaluation, so that an expression
	// looping over a huge list cannot stall the check (TestEvaluateCEL
	// "cost limit"). Finding Ready among 21 conditions costs 153.
	celCostLimit = 1_000_000
)

// CheckSpec says how to judge the objects of one kind with CEL expressions
// instead of kstatus, such as
//
//	status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')
//
// An expression gives a bool. It sees the object as read from the cluster
// through the variables metadata, spec and status, its top-level fields (an
// empty map when the object lacks one, so has(status.phase) works before
// the object's controller wrote a status), and object, the whole object.
// Optional fields (status.?phase.orValue("")) and the string extensions
// are available. An expression that cannot be evaluated on an object, for
// instance because it reads a field the object lacks, counts as false.
//
// The kind's own failure rules still apply: a CEL check on Deployments
// does not hide a crash-looping pod.
type CheckSpec struct {
	// GroupKind selects the objects judged.
	GroupKind schema.GroupKind
	// Version is the API version the objects are read at, the one the
	// expressions are written against; empty means the version the API
	// server prefers.
	Version string
	// Current is true once an object is ready: it is then Current, and
	// InProgress while it is false.
	Current string
	// Failed, optional, is true when an object failed for good: the check
	// fails at once, naming the expression.
	Failed string
}

// Check is a CheckSpec with its expressions compiled, ready to evaluate.
// It is safe for concurrent use.
type Check struct {
	spec    CheckSpec
	current cel.Program
	failed  cel.Program // nil without a Failed expression
}

// ExpressionError is an expression of a CheckSpec that does not compile.
type ExpressionError struct {
	// Field is "current" or "failed".
	Field string
	// Expression is the expression as written.
	Expression string
	// Err says what is wrong, on one line.
	Err error
}

// Error returns "field: reason".
func (e *ExpressionError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the compile error.
func (e *ExpressionError) Unwrap() error { return e.Err }

// celEnv is the environment every expression is compiled in: the standard
// library, optional fields (status.?phase.orValue("")) and the string
// extensions.
var celEnv = func() *cel.Env {
	opts := []cel.EnvOption{cel.Variable(celObject, cel.DynType), cel.OptionalTypes(), ext.Strings()}
	for _, name := range celVariables {
		opts = append(opts, cel.Variable(name, cel.DynType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		// The declarations above are fixed: this cannot fail at run time
		// if it passed once (TestCompileCheck).
		panic(fmt.Sprintf("health: CEL environment: %v", err))
	}
	return env
}()

// CompileCheck compiles spec's expressions. Each expression that does not
// compile, or does not give a bool, is reported as an *ExpressionError,
// joined with errors.Join.
func CompileCheck(spec CheckSpec) (*Check, error) {
	c := &Check{spec: spec}
	var errs []error
	if spec.GroupKind.Kind == "" {
		errs = append(errs, errors.New("kind: required"))
	}
	var err error
	if spec.Current == "" {
		errs = append(errs, &ExpressionError{Field: "current", Err: errors.New("required")})
	} else if c.current, err = compile(spec.Current); err != nil {
		errs = append(errs, &ExpressionError{Field: "current", Expression: spec.Current, Err: err})
	}
	if spec.Failed != "" {
		if c.failed, err = compile(spec.Failed); err != nil {
			errs = append(errs, &ExpressionError{Field: "failed", Expression: spec.Failed, Err: err})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Spec returns what c was compiled from.
func (c *Check) Spec() CheckSpec { return c.spec }

// compile turns one expression into a program, or says on one line why it
// cannot.
func compile(expr string) (cel.Program, error) {
	ast, iss := celEnv.Compile(expr)
	if iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	// A variable's fields are dynamic, so status.ready is dyn and is checked
	// at evaluation; a type known not to be bool is refused now.
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("gives %s, want a bool", t)
	}
	prg, err := celEnv.Program(ast, cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, err
	}
	return prg, nil
}

// evaluate judges obj, an object's content as read from the cluster:
// Failed when the failed expression is true, else Current when the current
// expression is true, else InProgress. An expression that cannot be
// evaluated on obj (it reads a field obj lacks, say, because its
// controller has not written it yet) counts as false; for current, the
// error is the message (TestEvaluateCEL "no status yet").
func (c *Check) evaluate(obj map[string]any) (status.Status, string) {
	vars := activation(obj)
	if c.failed != nil {
		if failed, err := eval(c.failed, vars); err == nil && failed {
			return status.FailedStatus, "failed: " + text.OneLine(c.spec.Failed, maxMessage)
		}
	}
	current, err := eval(c.current, vars)
	switch {
	case err != nil:
		return status.InProgressStatus, "not current: " + text.OneLine(c.spec.Current, maxMessage/2) + ": " + text.OneLine(err.Error(), maxMessage/2)
	case current:
		return status.CurrentStatus, "current: " + text.OneLine(c.spec.Current, maxMessage)
	default:
		return status.InProgressStatus, "not current: " + text.OneLine(c.spec.Current, maxMessage)
	}
}

// activation binds the variables of an expression to obj's fields.
func activation(obj map[string]any) map[string]any {
	vars := map[string]any{celObject: obj}
	for _, name := range celVariables {
		if v, ok := obj[name]; ok && v != nil {
			vars[name] = v
		} else {
			vars[name] = map[string]any{}
		}
	}
	return vars
}

// eval runs prg and requires a bool.
func eval(prg cel.Program, vars map[string]any) (bool, error) {
	out, _, err := prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("gives %s, want a bool", out.Type().TypeName())
	}
	return b, nil
}
