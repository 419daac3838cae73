package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, tc := range []struct{ in, def, want time.Duration }{
		{0, time.Second, time.Second},
		{-1, time.Second, time.Second},
		{2 * time.Second, time.Second, 2 * time.Second},
	} {
		v := tc.in
		Positive(&v, tc.def)
		if v != tc.want {
			t.Errorf("Positive(%v, %v) = %v, want %v", tc.in, tc.def, v, tc.want)
		}
	}
	n := 0
	Positive(&n, 256)
	if n != 256 {
		t.Errorf("Positive(0, 256) = %d", n)
	}
}

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct{ in, def, floor, want int }{
		{0, 60, 1, 60},   // unset: the default
		{0, 60, 90, 90},  // unset, default below the floor: the floor
		{30, 60, 10, 30}, // set above the floor: kept
		{5, 60, 10, 60},  // set below the floor: the default
	} {
		v := tc.in
		AtLeast(&v, tc.def, tc.floor)
		if v != tc.want {
			t.Errorf("AtLeast(%d, %d, %d) = %d, want %d", tc.in, tc.def, tc.floor, v, tc.want)
		}
	}
}

func TestOr(t *testing.T) {
	a, b := 1, 2
	if Or(nil, &b) != &b || Or(&a, &b) != &a {
		t.Error("Or picks the wrong pointer")
	}
}
