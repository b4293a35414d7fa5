//go:build windows

package store

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

// platformSealer seals with DPAPI in machine scope: the service
// (LocalSystem) and an administrator's console, both on this machine, can
// unseal; a copy of the database on another machine cannot.
func platformSealer() sealer { return dpapi{} }

type dpapi struct{}

// dpapiEntropy is mixed into every seal, so that a program unsealing every
// machine-scope blob it finds does not read ours without knowing it.
const dpapiEntropy = "presencebridge store secret v1"

func (dpapi) name() string { return "dpapi" }

func (dpapi) seal(plain []byte) ([]byte, error) {
	return dpapiCall(plain, func(in, ent, out *windows.DataBlob) error {
		return windows.CryptProtectData(in, nil, ent, 0, nil, windows.CRYPTPROTECT_LOCAL_MACHINE|windows.CRYPTPROTECT_UI_FORBIDDEN, out)
	})
}

func (dpapi) unseal(blob []byte) ([]byte, error) {
	return dpapiCall(blob, func(in, ent, out *windows.DataBlob) error {
		return windows.CryptUnprotectData(in, nil, ent, 0, nil, windows.CRYPTPROTECT_UI_FORBIDDEN, out)
	})
}

func dpapiCall(data []byte, call func(in, ent, out *windows.DataBlob) error) ([]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	in := windows.DataBlob{Size: uint32(len(data)), Data: &data[0]}
	entropy := []byte(dpapiEntropy)
	ent := windows.DataBlob{Size: uint32(len(entropy)), Data: &entropy[0]}
	var out windows.DataBlob
	if err := call(&in, &ent, &out); err != nil {
		return nil, err
	}
	defer windows.LocalFree(windows.Handle(unsafe.Pointer(out.Data)))
	return append([]byte(nil), unsafe.Slice(out.Data, out.Size)...), nil
}
