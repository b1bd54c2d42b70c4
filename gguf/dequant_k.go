package gguf

import "encoding/binary"

// K-quants: super-blocks of 256 elements (ggml-common.h block_q*_K).

func dequantQ2_K(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[84]byte)(src[i*84:])
		y := (*[256]float32)(dst[i*256:])
		scales := b[0:16]
		d := fp16(tab, b[80:82])
		min := fp16(tab, b[82:84])
		is, k := 0, 0
		for n := 0; n < 2; n++ {
			q := b[16+32*n : 16+32*n+32]
			shift := uint(0)
			for j := 0; j < 4; j++ {
				for h := 0; h < 2; h++ {
					sc := scales[is]
					is++
					dl := d * float32(sc&0xF)
					ml := min * float32(sc>>4)
					qq := q[16*h : 16*h+16]
					for l := 0; l < 16; l++ {
						y[k] = float32(dl*float32((qq[l]>>shift)&3)) - ml
						k++
					}
				}
				shift += 2
			}
		}
	}
}

func dequantQ3_K(src []byte, dst []float32) {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[110]byte)(src[i*110:])
		y := (*[256]float32)(dst[i*256:])
		hm := b[0:32]
		d := fp16(tab, b[108:110])
		var aux [4]uint32
		aux[0] = binary.LittleEndian.Uint32(b[96:])
		aux[1] = binary.LittleEndian.Uint32(b[100:])
		tmp := binary.LittleEndian.Uint32(b[104:])
		aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
		aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
		aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
		aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
		var scales [16]int8
		for s := range scales {
			scales[s] = int8(byte(aux[s/4] >> (8 * (s % 4))))
		}
		is, k := 0, 0
		m := byte(1)
		for n := 0; n < 2; n++ {
			q := b[32+32*n : 32+32*n+32]
			shift := uint(0)
			for j := 0; j < 4; j++ {
				for h := 0; h < 2; h++ {
					dl := d * float32(int32(scales[is])-32)
					is++
					for l := 0; l < 16; l++ {
						v := int32((q[16*h+l] >> shift) & 3)
						if hm[16*h+l]&m == 0 {
							v -= 4
						}
						y[k] = dl * float32(v)
						k++
					}
				}
				shift += 2
				m <<= 1
			}
		}
	}
}

// scaleMinK4 is ggml's get_scale_min_k4.
func scaleMinK4(j int, q []byte) (d, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

func dequantQ4_K(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[144]byte)(src[i*144:])
		y := (*[256]float32)(dst[i*256:])
		d := fp16(tab, b[0:2])
		min := fp16(tab, b[2:4])
		scales := b[4:16]
		for j := 0; j < 4; j++ {
			sc, m := scaleMinK4(2*j, scales)
			d1, m1 := d*float32(sc), min*float32(m)
			sc, m = scaleMinK4(2*j+1, scales)
			d2, m2 := d*float32(sc), min*float32(m)
			q := (*[32]byte)(b[16+32*j:])
			o := (*[64]float32)(y[64*j:])
			for l := 0; l < 32; l++ {
				o[l] = float32(d1*float32(q[l]&0xF)) - m1
				o[l+32] = float32(d2*float32(q[l]>>4)) - m2
			}
		}
	}
}

func dequantQ5_K(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[176]byte)(src[i*176:])
		y := (*[256]float32)(dst[i*256:])
		d := fp16(tab, b[0:2])
		min := fp16(tab, b[2:4])
		scales := b[4:16]
		qh := (*[32]byte)(b[16:48])
		u1, u2 := byte(1), byte(2)
		for j := 0; j < 4; j++ {
			sc, m := scaleMinK4(2*j, scales)
			d1, m1 := d*float32(sc), min*float32(m)
			sc, m = scaleMinK4(2*j+1, scales)
			d2, m2 := d*float32(sc), min*float32(m)
			ql := (*[32]byte)(b[48+32*j:])
			o := (*[64]float32)(y[64*j:])
			for l := 0; l < 32; l++ {
				lo, hi := ql[l]&0xF, ql[l]>>4
				if qh[l]&u1 != 0 {
					lo += 16
				}
				if qh[l]&u2 != 0 {
					hi += 16
				}
				o[l] = float32(d1*float32(lo)) - m1
				o[l+32] = float32(d2*float32(hi)) - m2
			}
			u1 <<= 2
			u2 <<= 2
		}
	}
}

func dequantQ6_K(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[210]byte)(src[i*210:])
		y := (*[256]float32)(dst[i*256:])
		d := fp16(tab, b[208:210])
		for n := 0; n < 2; n++ {
			ql := (*[64]byte)(b[64*n:])
			qh := (*[32]byte)(b[128+32*n:])
			sc := (*[8]byte)(b[192+8*n:])
			o := (*[128]float32)(y[128*n:])
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0xF|((qh[l]>>0)&3)<<4) - 32
				q2 := int32(ql[l+32]&0xF|((qh[l]>>2)&3)<<4) - 32
				q3 := int32(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				o[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				o[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				o[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				o[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
		}
	}
}

func dequantIQ4_XS(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[136]byte)(src[i*136:])
		y := (*[256]float32)(dst[i*256:])
		d := fp16(tab, b[0:2])
		scalesH := binary.LittleEndian.Uint16(b[2:4])
		for ib := 0; ib < 8; ib++ {
			ls := int32((b[4+ib/2]>>(4*(ib%2)))&0xF) | int32((scalesH>>(2*ib))&3)<<4
			dl := d * float32(ls-32)
			qs := (*[16]byte)(b[8+16*ib:])
			o := (*[32]float32)(y[32*ib:])
			for j := 0; j < 16; j++ {
				o[j] = dl * float32(kvaluesIQ4NL[qs[j]&0xF])
				o[j+16] = dl * float32(kvaluesIQ4NL[qs[j]>>4])
			}
		}
	}
}

// Ternary types (BitNet-style).

var pow3 = [6]byte{1, 3, 9, 27, 81, 243}

func trit(q byte, n int) float32 {
	v := q * pow3[n] // uint8 wrap-around, as in ggml
	return float32(int32((uint16(v)*3)>>8) - 1)
}

func dequantTQ1_0(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[54]byte)(src[i*54:])
		y := (*[256]float32)(dst[i*256:])
		d := fp16(tab, b[52:54])
		k := 0
		// qs[0:32]: 5 trits each, 32 at a time; qs[32:48]: 16 at a time; qh[0:4]: 4 trits each.
		for n := 0; n < 5; n++ {
			for m := 0; m < 32; m++ {
				y[k] = trit(b[m], n) * d
				k++
			}
		}
		for n := 0; n < 5; n++ {
			for m := 0; m < 16; m++ {
				y[k] = trit(b[32+m], n) * d
				k++
			}
		}
		for n := 0; n < 4; n++ {
			for j := 0; j < 4; j++ {
				y[k] = trit(b[48+j], n) * d
				k++
			}
		}
	}
}

func dequantTQ2_0(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/256; i++ {
		b := (*[66]byte)(src[i*66:])
		y := (*[256]float32)(dst[i*256:])
		d := fp16(tab, b[64:66])
		k := 0
		for j := 0; j < 64; j += 32 {
			for l := uint(0); l < 4; l++ {
				for m := 0; m < 32; m++ {
					y[k] = float32(int32((b[j+m]>>(l*2))&3)-1) * d
					k++
				}
			}
		}
	}
}
