package sync

import (
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// TestChanges_DigestSeesWhatStatusShows: the digest is written out field
// by field over the engine's user record. This changes every field of the
// record in turn (through pointers, in the first element of slices) and
// checks that whenever status() changes, the digest does too, so that a
// field added to the record and shown by status() but not digested fails
// here instead of leaving consoles with a stale user.
func TestChanges_DigestSeesWhatStatusShows(t *testing.T) {
	c := NewChanges()
	seen := 0
	var walk func(path string, get func(u *userRT) reflect.Value, typ reflect.Type)
	walk = func(path string, get func(u *userRT) reflect.Value, typ reflect.Type) {
		switch {
		case typ == reflect.TypeOf(time.Time{}):
			try(t, c, path, get, reflect.ValueOf(time.Unix(1, 0)))
			seen++
		case typ.Kind() == reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				walk(path+"."+f.Name, func(u *userRT) reflect.Value { return field(get(u), i) }, f.Type)
			}
		case typ.Kind() == reflect.Pointer:
			walk(path+".*", func(u *userRT) reflect.Value { return get(u).Elem() }, typ.Elem())
		case typ.Kind() == reflect.Slice:
			walk(path+"[0]", func(u *userRT) reflect.Value { return get(u).Index(0) }, typ.Elem())
		case typ.Kind() == reflect.Array:
			walk(path+"[0]", func(u *userRT) reflect.Value { return get(u).Index(0) }, typ.Elem())
		case typ.Kind() == reflect.Chan:
			// leaveDone: how a removal answers its caller, not shown
		default:
			try(t, c, path, get, other(typ))
			seen++
		}
	}
	walk("userRT", func(u *userRT) reflect.Value { return reflect.ValueOf(u).Elem() }, reflect.TypeOf(userRT{}))
	if seen < 60 {
		t.Fatalf("changed %d fields only: the walk misses the record", seen)
	}
}

// try sets the field get finds to v in a fresh record and compares.
func try(t *testing.T, c *Changes, path string, get func(u *userRT) reflect.Value, v reflect.Value) {
	t.Helper()
	a, b := fullUser(), fullUser()
	f := get(b)
	if f.Kind() == reflect.Bool && f.Bool() {
		v = reflect.ValueOf(false)
	}
	f.Set(v.Convert(f.Type()))
	if reflect.DeepEqual(a.status(), b.status()) {
		return // not shown: no need to notice it
	}
	if c.digest(a) == c.digest(b) {
		t.Errorf("%s changes the status but not the digest: add it to Changes.digest", path)
	}
}

// field is a struct's field, settable even when unexported.
func field(v reflect.Value, i int) reflect.Value {
	f := v.Field(i)
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

func other(t reflect.Type) reflect.Value {
	switch t.Kind() {
	case reflect.String:
		return reflect.ValueOf("x")
	case reflect.Bool:
		return reflect.ValueOf(true)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint, reflect.Uintptr:
		return reflect.ValueOf(uint64(3))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return reflect.ValueOf(int64(3))
	}
	panic(fmt.Sprintf("no other value for a %s", t))
}

// fullUser has every pointer set and one element in every slice, so that
// the walk reaches every field.
func fullUser() *userRT {
	h := func(kind HoldKind) *held {
		return &held{kind: kind, shown: &mark{}, unsure: []mark{{}}, earlier: []mark{{}}}
	}
	return &userRT{
		prof:      &Profile{Name: "p"},
		phone:     PhoneState{Devices: []Device{{}}, Calls: []Call{{}}},
		teamsHold: h(HoldTeamsSession), presHold: h(HoldPhonePresence), devHolds: []*held{h(HoldDeviceProtection)},
		yieldDev: []string{""}, rejectedDev: []string{""}, leaveDone: []chan error{nil},
	}
}
