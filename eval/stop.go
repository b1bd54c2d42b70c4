package eval

import (
	"bytes"
	"errors"
	"io"
)

// ErrStopString is returned by StopWriter.Write once a stop string has been written.
var ErrStopString = errors.New("stop string reached")

// StopWriter passes text through to W until one of Stops appears in it: the text before the
// stop string is written, the stop string and everything after it are not, and Write returns
// ErrStopString. Text that could be the start of a stop string is held back until it is not
// (Flush writes it at the end).
type StopWriter struct {
	W     io.Writer
	Stops []string
	Hit   string // the stop string found ("" until then)
	buf   []byte
}

// Write implements io.Writer.
func (s *StopWriter) Write(p []byte) (int, error) {
	if s.Hit != "" {
		return 0, ErrStopString
	}
	s.buf = append(s.buf, p...)
	first, hit := -1, ""
	for _, st := range s.Stops {
		if st == "" {
			continue
		}
		if i := bytes.Index(s.buf, []byte(st)); i >= 0 && (first < 0 || i < first) {
			first, hit = i, st
		}
	}
	if first >= 0 {
		s.Hit = hit
		_, err := s.W.Write(s.buf[:first])
		s.buf = s.buf[:0]
		if err != nil {
			return len(p), err
		}
		return len(p), ErrStopString
	}
	// Hold back the longest tail that is a prefix of a stop string.
	keep := 0
	for _, st := range s.Stops {
		for k := min(len(st)-1, len(s.buf)); k > keep; k-- {
			if bytes.HasSuffix(s.buf, []byte(st[:k])) {
				keep = k
				break
			}
		}
	}
	n := len(s.buf) - keep
	if n > 0 {
		if _, err := s.W.Write(s.buf[:n]); err != nil {
			return len(p), err
		}
		s.buf = append(s.buf[:0], s.buf[n:]...)
	}
	return len(p), nil
}

// Flush writes the held-back text (nothing after a stop string).
func (s *StopWriter) Flush() error {
	if s.Hit != "" || len(s.buf) == 0 {
		return nil
	}
	_, err := s.W.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}
