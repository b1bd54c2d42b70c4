package eval

import (
	"bytes"
	"errors"
	"testing"
)

func TestStopWriter(t *testing.T) {
	for _, tc := range []struct {
		chunks []string
		stops  []string
		want   string
		hit    string
	}{
		{[]string{"Hello", " wor", "ld\nUser:", " more"}, []string{"User:"}, "Hello world\n", "User:"},
		{[]string{"ab", "c", "d"}, []string{"cx"}, "abcd", ""},
		{[]string{"a", "U", "s", "e", "r", ":"}, []string{"User:", "se"}, "aU", "se"},
		{[]string{"xyz"}, nil, "xyz", ""},
		{[]string{"STOP"}, []string{"STOP"}, "", "STOP"},
	} {
		var out bytes.Buffer
		s := &StopWriter{W: &out, Stops: tc.stops}
		var err error
		for _, c := range tc.chunks {
			if _, err = s.Write([]byte(c)); err != nil {
				break
			}
		}
		if tc.hit != "" && !errors.Is(err, ErrStopString) {
			t.Errorf("%q: err %v", tc.chunks, err)
		}
		s.Flush()
		if out.String() != tc.want || s.Hit != tc.hit {
			t.Errorf("%q stops %q: wrote %q hit %q, want %q %q", tc.chunks, tc.stops, out.String(), s.Hit, tc.want, tc.hit)
		}
	}
}
