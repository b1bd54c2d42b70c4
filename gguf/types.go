package gguf

import (
	"fmt"
	"math/bits"
)

// Type is a ggml tensor type id as stored in GGUF tensor infos.
type Type uint32

// ggml tensor type ids (ggml.h enum ggml_type). Ids 4, 5 and 31-33, 36-38 were removed from ggml.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

type typeInfo struct {
	name       string
	blockSize  int // elements per block
	blockBytes int // bytes per block
}

// typeTable holds the block geometry of every type whose layout is known (ggml-common.h).
var typeTable = map[Type]typeInfo{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	Q4_0:    {"Q4_0", 32, 18},
	Q4_1:    {"Q4_1", 32, 20},
	Q5_0:    {"Q5_0", 32, 22},
	Q5_1:    {"Q5_1", 32, 24},
	Q8_0:    {"Q8_0", 32, 34},
	Q8_1:    {"Q8_1", 32, 36},
	Q2_K:    {"Q2_K", 256, 84},
	Q3_K:    {"Q3_K", 256, 110},
	Q4_K:    {"Q4_K", 256, 144},
	Q5_K:    {"Q5_K", 256, 176},
	Q6_K:    {"Q6_K", 256, 210},
	Q8_K:    {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66},
	IQ2_XS:  {"IQ2_XS", 256, 74},
	IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S:   {"IQ1_S", 256, 50},
	IQ4_NL:  {"IQ4_NL", 32, 18},
	IQ3_S:   {"IQ3_S", 256, 110},
	IQ2_S:   {"IQ2_S", 256, 82},
	IQ4_XS:  {"IQ4_XS", 256, 136},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	F64:     {"F64", 1, 8},
	IQ1_M:   {"IQ1_M", 256, 56},
	BF16:    {"BF16", 1, 2},
	TQ1_0:   {"TQ1_0", 256, 54},
	TQ2_0:   {"TQ2_0", 256, 66},
	MXFP4:   {"MXFP4", 32, 17},
}

// String returns the ggml name of the type ("Q4_K"), or "type(N)" for an unknown id.
func (t Type) String() string {
	if ti, ok := typeTable[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether the block layout of t is known (so files holding it can be opened).
func (t Type) Known() bool { _, ok := typeTable[t]; return ok }

// CanDequantize reports whether Dequantize supports t.
func (t Type) CanDequantize() bool { return dequantizers[t] != nil }

// BlockSize returns the number of elements per block (1 for plain types), or 0 if t is unknown.
func (t Type) BlockSize() int { return typeTable[t].blockSize }

// BlockBytes returns the bytes per block, or 0 if t is unknown.
func (t Type) BlockBytes() int { return typeTable[t].blockBytes }

// ParseType returns the type named s (as printed by String, case-sensitive).
func ParseType(s string) (Type, bool) {
	for t, ti := range typeTable {
		if ti.name == s {
			return t, true
		}
	}
	return 0, false
}

// RowBytes returns the bytes taken by a row of cols elements of type t. cols must be a multiple
// of the block size.
func (t Type) RowBytes(cols uint64) (uint64, error) {
	ti, ok := typeTable[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %s: %w", t, ErrUnsupportedType)
	}
	if cols%uint64(ti.blockSize) != 0 {
		return 0, fmt.Errorf("row of %d elements is not a multiple of the %s block size %d: %w",
			cols, t, ti.blockSize, ErrCorrupt)
	}
	hi, lo := bits.Mul64(cols/uint64(ti.blockSize), uint64(ti.blockBytes))
	if hi != 0 {
		return 0, fmt.Errorf("row of %d %s elements overflows 64 bits: %w", cols, t, ErrCorrupt)
	}
	return lo, nil
}
