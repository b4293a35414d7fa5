package sync_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	psync "github.com/presencebridge/presencebridge/sync"
)

// maxSettingBytes is what a normalized value may be at most in this test: a
// value the console and `config list` print must stay a line.
const maxSettingBytes = 4 << 10

// FuzzSettingNormalize runs every setting's Normalize on arbitrary values: no
// panic; an accepted value is canonical (normalizing it again changes
// nothing), within its kind's range, and, unless it is a secret that is
// never printed, free of control characters that would reach a terminal.
func FuzzSettingNormalize(f *testing.F) {
	specs := psync.SettingSpecs()
	for i, s := range specs {
		for _, v := range []string{s.Default, "", " " + s.Default + " ", "x\x1b[2Jy", "a\nb", "https://h/", "https://h//", "10m", "1h0m0s",
			"-1", "9223372036854775808", "+50", "true", "POLL", "subscribe", "https://u:p@h", "http://h/ /", strings.Repeat("x", 5000)} {
			f.Add(uint(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, i uint, v string) {
		s := specs[i%uint(len(specs))]
		out, err := s.Normalize(v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), s.Key+": ") {
				t.Fatalf("%s: error %q does not name the setting", s.Key, err)
			}
			return
		}
		again, err := s.Normalize(out)
		if err != nil || again != out {
			t.Fatalf("%s: %q normalizes to %q, which normalizes to %q (%v)", s.Key, v, out, again, err)
		}
		if len(out) > maxSettingBytes || !utf8.ValidString(out) {
			t.Fatalf("%s: accepted %d bytes (valid UTF-8: %v)", s.Key, len(out), utf8.ValidString(out))
		}
		if s.Kind != psync.KindSecret && strings.ContainsFunc(out, unicode.IsControl) {
			t.Fatalf("%s: accepted control characters: %q", s.Key, out)
		}
		if s.Kind == psync.KindSecret && (strings.ContainsAny(out, "\r\n\x00") || (out != "" && s.Show(out) != psync.Mask)) {
			t.Fatalf("%s: secret %q shown as %q", s.Key, out, s.Show(out))
		}
		switch s.Kind {
		case psync.KindInt:
			n, err := strconv.ParseInt(out, 10, 64)
			if err != nil || n < s.Min || n > s.Max {
				t.Fatalf("%s: %q out of range", s.Key, out)
			}
		case psync.KindDuration:
			d, err := time.ParseDuration(out)
			if err != nil || int64(d) < s.Min || int64(d) > s.Max {
				t.Fatalf("%s: %q out of range", s.Key, out)
			}
		case psync.KindEnum:
			found := false
			for _, e := range s.Enum {
				found = found || e == out
			}
			if !found {
				t.Fatalf("%s: %q is not one of %q", s.Key, out, s.Enum)
			}
		case psync.KindURL:
			if out != "" && !strings.HasPrefix(out, "https://") && !strings.HasPrefix(out, "http://") {
				t.Fatalf("%s: %q", s.Key, out)
			}
		}
	})
}
