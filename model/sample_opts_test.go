package model

import "testing"

func TestRepeatPenalty(t *testing.T) {
	logits := []float32{2, 1.9, -1, 0.5}
	s := NewSampler(4, SamplerOptions{RepeatPenalty: 1.5, RepeatLastN: 2})
	if got := s.Sample(logits); got != 0 {
		t.Fatalf("no history: %d, want 0", got)
	}
	s.Accept(0) // 2 -> 1.33: token 1 wins greedily
	if got := s.Sample(logits); got != 1 {
		t.Fatalf("after accepting 0: %d, want 1", got)
	}
	if logits[0] != 2 {
		t.Fatal("Sample modified the logits")
	}
	s.Accept(0) // twice: penalised once only
	if p := s.penalise(logits); p[0] != 2/1.5 || p[1] != 1.9 {
		t.Fatalf("penalised %v", p)
	}
	s.Accept(1)
	s.Accept(2) // the ring holds 1, 2 now: 0 is free again, -1 becomes -1.5
	if p := s.penalise(logits); p[0] != 2 || p[1] != 1.9/1.5 || p[2] != -1.5 {
		t.Fatalf("after the ring wrapped: %v", p)
	}
}

func TestMinP(t *testing.T) {
	logits := []float32{0, -0.1, -10, -10}
	// min-p 0.5: tokens 0 and 1 (p ratio e^-0.1) survive, 2 and 3 (e^-10) never come.
	s := NewSampler(4, SamplerOptions{Temperature: 1, MinP: 0.5, Seed: 3})
	seen := map[int]int{}
	for range 400 {
		seen[s.Sample(logits)]++
	}
	if seen[2]+seen[3] != 0 || seen[0] == 0 || seen[1] == 0 {
		t.Fatalf("min-p 0.5: %v", seen)
	}
	// with top-k too
	s = NewSampler(4, SamplerOptions{Temperature: 1, TopK: 3, MinP: 0.99, Seed: 3})
	for range 100 {
		if got := s.Sample(logits); got != 0 {
			t.Fatalf("min-p 0.99: %d", got)
		}
	}
}
