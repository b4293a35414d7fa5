package tui

import (
	"reflect"
	"strings"
)

// External text reaches the terminal only without control characters:
// Teams activities are open strings, adapter errors quote remote servers,
// and an ESC among them could redraw the console, forge a hyperlink or set
// the clipboard (OSC 52). Line breaks and tabs become spaces, so a value
// stays on its line.

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) }

func cleanText(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case isControl(r):
			return -1
		}
		return r
	}, s)
}

// clean replaces every exported string reachable from v (structs, slices,
// pointers) with its cleaned text, in place.
func clean[T any](v *T) { cleanValue(reflect.ValueOf(v)) }

func cleanValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			cleanValue(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				cleanValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			cleanValue(v.Index(i))
		}
	case reflect.String:
		if v.CanSet() {
			if s := v.String(); strings.ContainsFunc(s, isControl) {
				v.SetString(cleanText(s))
			}
		}
	}
}
