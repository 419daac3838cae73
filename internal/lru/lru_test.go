package lru

import "testing"

func TestMap(t *testing.T) {
	m := New[string, int](2)
	m.Put("a", 1)
	m.Put("b", 2)
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("Get a = %d, %v", v, ok)
	}
	m.Put("c", 3) // evicts b, the least recently used
	if _, ok := m.Get("b"); ok {
		t.Fatal("b survived past the size")
	}
	if m.Add("a", 9) {
		t.Fatal("Add replaced a present key")
	}
	if !m.Add("d", 4) {
		t.Fatal("Add refused a new key")
	}
	m.Remove("d")
	if _, ok := m.Get("d"); ok {
		t.Fatal("d not removed")
	}
}
