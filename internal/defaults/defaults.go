// Package defaults fills the zero fields of option structs from their
// DefaultXOptions values, one rule for every package: a field that is zero
// or negative takes its default.
package defaults

import "cmp"

// Number is a type whose zero or negative value means "not set": counts,
// sizes and time.Durations.
type Number interface {
	~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64 | ~float64
}

// Positive sets *v to def when *v is not above zero.
func Positive[T Number](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// AtLeast sets *v to max(def, floor) when *v is below floor: an upper
// bound that must not fall under its lower bound.
func AtLeast[T cmp.Ordered](v *T, def, floor T) {
	if *v < floor {
		*v = max(def, floor)
	}
}

// Or returns v, or def when v is nil: for loggers, clocks and clients.
func Or[T any](v *T, def *T) *T {
	if v == nil {
		return def
	}
	return v
}
