package bufpool

import "testing"

func TestPool(t *testing.T) {
	var p Pool[float32]
	b := p.Get(10)
	if len(*b) != 10 {
		t.Fatalf("len %d, want 10", len(*b))
	}
	p.Put(b)
	if c := p.Get(100); len(*c) != 100 || cap(*c) < 100 {
		t.Fatalf("len %d cap %d, want 100", len(*c), cap(*c))
	}
	if c := p.Get(0); len(*c) != 0 {
		t.Fatalf("len %d, want 0", len(*c))
	}
}
