package gguf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ValueType is a GGUF metadata value type (gguf_type).
type ValueType uint32

// GGUF metadata value types.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64"}

// String returns the GGUF name of the value type ("uint32", "array", ...).
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value_type(%d)", uint32(t))
}

func (t ValueType) valid() bool { return t <= ValueFloat64 }

// scalarSize returns the encoded size of a fixed-size scalar, 0 for string/array/unknown.
func (t ValueType) scalarSize() int {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64:
		return 8
	}
	return 0
}

func (t ValueType) isSigned() bool {
	return t == ValueInt8 || t == ValueInt16 || t == ValueInt32 || t == ValueInt64
}

func (t ValueType) isInt() bool {
	switch t {
	case ValueUint8, ValueInt8, ValueUint16, ValueInt16, ValueUint32, ValueInt32, ValueUint64, ValueInt64:
		return true
	}
	return false
}

// Value is one GGUF metadata value: a scalar, a string or an array (arrays may nest).
// The zero Value is invalid (Type() == ValueUint8 but Valid() false).
type Value struct {
	typ  ValueType
	ok   bool
	num  uint64 // integers: two's complement bits (signed sign-extended); float32/float64: IEEE bits; bool: 0/1
	str  string
	elem ValueType
	// arr is []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
	// []uint64, []int64, []float64, or []Value (elements of nested arrays, each an array Value).
	arr any
}

// Valid reports whether v holds a value (false for the zero Value and failed lookups).
func (v Value) Valid() bool { return v.ok }

// Type returns the value's type.
func (v Value) Type() ValueType { return v.typ }

// ElemType returns the element type of an array value.
func (v Value) ElemType() ValueType { return v.elem }

// IsArray reports whether v is an array.
func (v Value) IsArray() bool { return v.ok && v.typ == ValueArray }

// Len returns the number of elements of an array value (0 for scalars).
func (v Value) Len() int {
	if !v.IsArray() {
		return 0
	}
	switch a := v.arr.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// Index returns element i of an array value as a Value (invalid Value when out of range).
func (v Value) Index(i int) Value {
	if i < 0 || i >= v.Len() {
		return Value{}
	}
	switch a := v.arr.(type) {
	case []uint8:
		return scalar(ValueUint8, uint64(a[i]))
	case []int8:
		return scalar(ValueInt8, uint64(int64(a[i])))
	case []uint16:
		return scalar(ValueUint16, uint64(a[i]))
	case []int16:
		return scalar(ValueInt16, uint64(int64(a[i])))
	case []uint32:
		return scalar(ValueUint32, uint64(a[i]))
	case []int32:
		return scalar(ValueInt32, uint64(int64(a[i])))
	case []float32:
		return scalar(ValueFloat32, uint64(math.Float32bits(a[i])))
	case []bool:
		return scalar(ValueBool, b2u(a[i]))
	case []string:
		return Value{typ: ValueString, ok: true, str: a[i]}
	case []uint64:
		return scalar(ValueUint64, a[i])
	case []int64:
		return scalar(ValueInt64, uint64(a[i]))
	case []float64:
		return scalar(ValueFloat64, math.Float64bits(a[i]))
	case []Value:
		return a[i]
	}
	return Value{}
}

// Values returns the elements of an array value as Values (allocates; prefer the typed accessors).
func (v Value) Values() ([]Value, bool) {
	if !v.IsArray() {
		return nil, false
	}
	out := make([]Value, v.Len())
	for i := range out {
		out[i] = v.Index(i)
	}
	return out, true
}

// Raw returns the Go value: uint8..int64, float32, float64, bool, string, or for arrays the typed
// slice ([]string, []float32, ..., or []Value for arrays of arrays). Do not modify returned slices.
func (v Value) Raw() any {
	if !v.ok {
		return nil
	}
	switch v.typ {
	case ValueUint8:
		return uint8(v.num)
	case ValueInt8:
		return int8(v.num)
	case ValueUint16:
		return uint16(v.num)
	case ValueInt16:
		return int16(v.num)
	case ValueUint32:
		return uint32(v.num)
	case ValueInt32:
		return int32(v.num)
	case ValueUint64:
		return v.num
	case ValueInt64:
		return int64(v.num)
	case ValueFloat32:
		return math.Float32frombits(uint32(v.num))
	case ValueFloat64:
		return math.Float64frombits(v.num)
	case ValueBool:
		return v.num != 0
	case ValueString:
		return v.str
	case ValueArray:
		return v.arr
	}
	return nil
}

// Str returns the value of a string.
func (v Value) Str() (string, bool) {
	if v.ok && v.typ == ValueString {
		return v.str, true
	}
	return "", false
}

// Uint returns any integer value that is not negative.
func (v Value) Uint() (uint64, bool) {
	if !v.ok || !v.typ.isInt() {
		return 0, false
	}
	if v.typ.isSigned() && int64(v.num) < 0 {
		return 0, false
	}
	return v.num, true
}

// Int returns any integer value that fits in int64.
func (v Value) Int() (int64, bool) {
	if !v.ok || !v.typ.isInt() {
		return 0, false
	}
	if v.typ == ValueUint64 && v.num > math.MaxInt64 {
		return 0, false
	}
	return int64(v.num), true
}

// Float returns a float or integer value as float64.
func (v Value) Float() (float64, bool) {
	if !v.ok {
		return 0, false
	}
	switch {
	case v.typ == ValueFloat32:
		return float64(math.Float32frombits(uint32(v.num))), true
	case v.typ == ValueFloat64:
		return math.Float64frombits(v.num), true
	case v.typ.isSigned():
		return float64(int64(v.num)), true
	case v.typ.isInt():
		return float64(v.num), true
	}
	return 0, false
}

// Bool returns a bool value.
func (v Value) Bool() (bool, bool) {
	if v.ok && v.typ == ValueBool {
		return v.num != 0, true
	}
	return false, false
}

// Strings returns a copy of an array of strings.
func (v Value) Strings() ([]string, bool) {
	if a, ok := v.arr.([]string); ok && v.IsArray() {
		return append([]string(nil), a...), true
	}
	return nil, false
}

// Float32s returns a numeric array (float or integer elements) converted to float32 (a copy).
func (v Value) Float32s() ([]float32, bool) {
	if !v.IsArray() {
		return nil, false
	}
	if a, ok := v.arr.([]float32); ok {
		return append([]float32(nil), a...), true
	}
	if v.elem != ValueFloat64 && !v.elem.isInt() {
		return nil, false
	}
	out := make([]float32, v.Len())
	for i := range out {
		f, _ := v.Index(i).Float()
		out[i] = float32(f)
	}
	return out, true
}

// Int32s returns an integer array converted to int32 (a copy); false if any element does not fit.
func (v Value) Int32s() ([]int32, bool) {
	if !v.IsArray() || !v.elem.isInt() {
		return nil, false
	}
	if a, ok := v.arr.([]int32); ok {
		return append([]int32(nil), a...), true
	}
	out := make([]int32, v.Len())
	for i := range out {
		x, ok := v.Index(i).Int()
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

// Int64s returns an integer array converted to int64 (a copy); false if any element does not fit.
func (v Value) Int64s() ([]int64, bool) {
	if !v.IsArray() || !v.elem.isInt() {
		return nil, false
	}
	out := make([]int64, v.Len())
	for i := range out {
		x, ok := v.Index(i).Int()
		if !ok {
			return nil, false
		}
		out[i] = x
	}
	return out, true
}

// String formats the value for display; long arrays are abbreviated.
func (v Value) String() string {
	if !v.ok {
		return "<invalid>"
	}
	switch v.typ {
	case ValueString:
		return strconv.Quote(v.str)
	case ValueArray:
		n := v.Len()
		var sb strings.Builder
		fmt.Fprintf(&sb, "[%s × %d: ", v.elem, n)
		for i := 0; i < n && i < 8; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(v.Index(i).String())
		}
		if n > 8 {
			sb.WriteString(", ...")
		}
		sb.WriteString("]")
		return sb.String()
	}
	return fmt.Sprint(v.Raw())
}

func scalar(t ValueType, num uint64) Value { return Value{typ: t, ok: true, num: num} }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// KV is one metadata key/value pair.
type KV struct {
	Key   string
	Value Value
}

// Scalar value constructors (for building KVs to write).

// Uint8 returns a uint8 KV.
func Uint8(key string, v uint8) KV { return KV{key, scalar(ValueUint8, uint64(v))} }

// Int8 returns an int8 KV.
func Int8(key string, v int8) KV { return KV{key, scalar(ValueInt8, uint64(int64(v)))} }

// Uint16 returns a uint16 KV.
func Uint16(key string, v uint16) KV { return KV{key, scalar(ValueUint16, uint64(v))} }

// Int16 returns an int16 KV.
func Int16(key string, v int16) KV { return KV{key, scalar(ValueInt16, uint64(int64(v)))} }

// Uint32 returns a uint32 KV.
func Uint32(key string, v uint32) KV { return KV{key, scalar(ValueUint32, uint64(v))} }

// Int32 returns an int32 KV.
func Int32(key string, v int32) KV { return KV{key, scalar(ValueInt32, uint64(int64(v)))} }

// Uint64 returns a uint64 KV.
func Uint64(key string, v uint64) KV { return KV{key, scalar(ValueUint64, v)} }

// Int64 returns an int64 KV.
func Int64(key string, v int64) KV { return KV{key, scalar(ValueInt64, uint64(v))} }

// Float32 returns a float32 KV.
func Float32(key string, v float32) KV {
	return KV{key, scalar(ValueFloat32, uint64(math.Float32bits(v)))}
}

// Float64 returns a float64 KV.
func Float64(key string, v float64) KV { return KV{key, scalar(ValueFloat64, math.Float64bits(v))} }

// Bool returns a bool KV.
func Bool(key string, v bool) KV { return KV{key, scalar(ValueBool, b2u(v))} }

// String returns a string KV.
func String(key string, v string) KV { return KV{key, Value{typ: ValueString, ok: true, str: v}} }

func arrayKV(key string, elem ValueType, a any) KV {
	return KV{key, Value{typ: ValueArray, ok: true, elem: elem, arr: a}}
}

// Array constructors; the slices are copied.

// Uint8Array returns an array-of-uint8 KV.
func Uint8Array(key string, v []uint8) KV { return arrayKV(key, ValueUint8, clone(v)) }

// Int8Array returns an array-of-int8 KV.
func Int8Array(key string, v []int8) KV { return arrayKV(key, ValueInt8, clone(v)) }

// Uint16Array returns an array-of-uint16 KV.
func Uint16Array(key string, v []uint16) KV { return arrayKV(key, ValueUint16, clone(v)) }

// Int16Array returns an array-of-int16 KV.
func Int16Array(key string, v []int16) KV { return arrayKV(key, ValueInt16, clone(v)) }

// Uint32Array returns an array-of-uint32 KV.
func Uint32Array(key string, v []uint32) KV { return arrayKV(key, ValueUint32, clone(v)) }

// Int32Array returns an array-of-int32 KV.
func Int32Array(key string, v []int32) KV { return arrayKV(key, ValueInt32, clone(v)) }

// Uint64Array returns an array-of-uint64 KV.
func Uint64Array(key string, v []uint64) KV { return arrayKV(key, ValueUint64, clone(v)) }

// Int64Array returns an array-of-int64 KV.
func Int64Array(key string, v []int64) KV { return arrayKV(key, ValueInt64, clone(v)) }

// Float32Array returns an array-of-float32 KV.
func Float32Array(key string, v []float32) KV { return arrayKV(key, ValueFloat32, clone(v)) }

// Float64Array returns an array-of-float64 KV.
func Float64Array(key string, v []float64) KV { return arrayKV(key, ValueFloat64, clone(v)) }

// BoolArray returns an array-of-bool KV.
func BoolArray(key string, v []bool) KV { return arrayKV(key, ValueBool, clone(v)) }

// Strings returns an array-of-string KV.
func Strings(key string, v []string) KV { return arrayKV(key, ValueString, clone(v)) }

// Array returns a KV holding an array of arrays: every element must be an array Value (for
// example the Value of another array KV). Elements may have different element types and lengths.
func Array(key string, elems ...Value) KV { return arrayKV(key, ValueArray, clone(elems)) }

func clone[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return append([]T(nil), v...)
}

// Equal reports whether v and w have the same type and contents, comparing floats bit by bit
// (so NaN equals the same NaN, and -0 differs from +0).
func (v Value) Equal(w Value) bool {
	if v.ok != w.ok || v.typ != w.typ {
		return false
	}
	if v.typ != ValueArray {
		return v.num == w.num && v.str == w.str
	}
	n := v.Len()
	if v.elem != w.elem || n != w.Len() {
		return false
	}
	for i := 0; i < n; i++ {
		if !v.Index(i).Equal(w.Index(i)) {
			return false
		}
	}
	return true
}
