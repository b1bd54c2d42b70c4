package model

// llama.cpp's convert_hf_to_gguf.py stores the q and k rows of arch "llama" models permuted for
// its interleaved RoPE:
//
//	w.reshape(n_head, 2, head_dim/2, cols).swapaxes(1, 2).reshape(rows, cols)
//
// so GGUF row h*hd + 2*i + j holds HF row h*hd + j*hd/2 + i (i < hd/2, j ∈ {0,1}).
// The model keeps rows in the HF rotate-half layout; these helpers map between the two.

// ggufRowToHF returns the HF (rotate-half) row index of GGUF row r of a permuted q or k matrix
// with heads of headDim rows.
func ggufRowToHF(r, headDim int) int {
	h, w := r/headDim, r%headDim
	i, j := w/2, w%2
	return h*headDim + j*(headDim/2) + i
}

// hfRowToGGUF is the inverse of ggufRowToHF: the GGUF row holding HF row r.
func hfRowToGGUF(r, headDim int) int {
	h, w := r/headDim, r%headDim
	half := headDim / 2
	j, i := w/half, w%half
	return h*headDim + 2*i + j
}

// permuteRows applies llama.cpp's converter permutation (HF layout → GGUF layout) to a row-major
// matrix with the given row width; unpermuteRows undoes it. Both return a new slice.
func permuteRows[T any](w []T, cols, headDim int) []T {
	out := make([]T, len(w))
	rows := len(w) / cols
	for r := 0; r < rows; r++ {
		copy(out[hfRowToGGUF(r, headDim)*cols:][:cols], w[r*cols:][:cols])
	}
	return out
}

func unpermuteRows[T any](w []T, cols, headDim int) []T {
	out := make([]T, len(w))
	rows := len(w) / cols
	for r := 0; r < rows; r++ {
		copy(out[ggufRowToHF(r, headDim)*cols:][:cols], w[r*cols:][:cols])
	}
	return out
}
