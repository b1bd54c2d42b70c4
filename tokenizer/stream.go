package tokenizer

// Streamer turns a stream of generated ids into text without ever splitting a UTF-8 character:
// bytes of an incomplete trailing character are held back until the next id completes them.
type Streamer struct {
	t       *Tokenizer
	pending []byte
}

// NewStreamer returns a Streamer for t's tokens.
func (t *Tokenizer) NewStreamer() *Streamer { return &Streamer{t: t} }

// Add appends the piece of id (as Piece) and returns the bytes that are now complete; the result
// is only valid until the next call.
func (s *Streamer) Add(id int) []byte {
	p := s.t.Piece(id)
	if len(s.pending) == 0 {
		if cut := completePrefix(p); cut == len(p) {
			return p
		}
	}
	s.pending = append(s.pending, p...)
	cut := completePrefix(s.pending)
	out := append([]byte(nil), s.pending[:cut]...)
	s.pending = append(s.pending[:0], s.pending[cut:]...)
	return out
}

// Flush returns whatever is held back (an incomplete character at the end of the stream) and
// resets the Streamer.
func (s *Streamer) Flush() []byte {
	out := s.pending
	s.pending = nil
	return out
}

// completePrefix returns the length of b without a trailing incomplete (but so far valid) UTF-8
// sequence. Invalid bytes are not held back.
func completePrefix(b []byte) int {
	n := len(b)
	for k := 1; k <= 3 && k <= n; k++ {
		c := b[n-k]
		if c&0xC0 == 0x80 { // continuation byte: keep looking for the lead
			continue
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 2
		case c&0xF0 == 0xE0:
			need = 3
		case c&0xF8 == 0xF0:
			need = 4
		}
		if need > k {
			return n - k
		}
		return n
	}
	return n
}
