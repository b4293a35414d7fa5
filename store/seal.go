package store

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Secrets are sealed at the store's boundary where the OS offers a way to
// (Windows: DPAPI, machine scope, seal_windows.go): the secret settings,
// the token caches and the notification certificate are kept sealed in the
// file and handed out in clear, so callers never see the difference. A
// copy of the file taken off the machine does not reveal them. Elsewhere
// the file's owner and mode are the protection (as tailscaled's are), and
// nothing is sealed.

// sealer seals and unseals bytes; its name marks what it sealed.
type sealer interface {
	name() string
	seal(plain []byte) ([]byte, error)
	unseal(blob []byte) ([]byte, error)
}

// sealMark starts a sealed setting value: "\x00" + sealer name + ":" +
// base64. No value can be stored in clear with a NUL in it (Normalize and
// CheckText refuse control characters), so the two never mix up.
const sealMark = "\x00"

// errSealedElsewhere: a value sealed by a sealer this machine lacks (a
// database copied from a Windows machine) or whose key it does not have.
var errSealedElsewhere = errors.New("it was sealed on the machine that wrote the database and cannot be unsealed here; set it again")

func isSecretSetting(key string) bool {
	spec, err := psync.LookupSetting(key)
	return err == nil && spec.Kind == psync.KindSecret
}

// sealSetting returns what is stored for a setting's value.
func sealSetting(sl sealer, key, value string) (string, error) {
	if sl == nil || value == "" || !isSecretSetting(key) {
		return value, nil
	}
	blob, err := sl.seal([]byte(value))
	if err != nil {
		return "", fmt.Errorf("sealing %s: %w", key, err)
	}
	return sealMark + sl.name() + ":" + base64.StdEncoding.EncodeToString(blob), nil
}

// isSealed reports whether a stored setting value is sealed.
func isSealed(stored string) bool { return strings.HasPrefix(stored, sealMark) }

// unsealSetting returns a stored setting's value in clear.
func unsealSetting(sl sealer, stored string) (string, error) {
	if !isSealed(stored) {
		return stored, nil
	}
	name, b64, ok := strings.Cut(stored[len(sealMark):], ":")
	if !ok {
		return "", errors.New("a damaged sealed value")
	}
	if sl == nil || sl.name() != name {
		return "", fmt.Errorf("sealed with %s: %w", name, errSealedElsewhere)
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("a damaged sealed value: %w", err)
	}
	plain, err := sl.unseal(blob)
	if err != nil {
		return "", fmt.Errorf("%w (%s: %v)", errSealedElsewhere, name, err)
	}
	return string(plain), nil
}
