package model

// Hooks for the external tests (package model_test), which may import packages that import
// model (convert writes the packs they load).

// SetTernaryReference makes every site of a ternary pack run fn instead of the ternary kernel:
// y = W·x over the channels idx (nil: all of x), one token and matrix per call.
func (s *State) SetTernaryReference(fn func(w *Matrix, x []float32, idx []int32, y []float32)) {
	s.ternRef = fn
}
