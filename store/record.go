package store

import (
	"encoding/json"
	"fmt"
)

// recordKind names one kind of stored value and the record version this
// build writes. A record's version moves when its JSON shape changes in a way
// an older reader would misread; the migration that rewrites the records
// bumps the schema version at the same time.
type recordKind struct {
	name    string
	version uint32
}

// The record kinds of schema.go's tree.
var (
	recSetting      = recordKind{"setting", 1}
	recProfile      = recordKind{"profile", 1}
	recUser         = recordKind{"user", 1}
	recLastTeams    = recordKind{"lastknown.teams", 1}
	recLastPhone    = recordKind{"lastknown.phone", 1}
	recHold         = recordKind{"hold", 1}
	recSubscription = recordKind{"subscription", 1}
	recAudit        = recordKind{"audit", 1}
	recCredential   = recordKind{"credential", 1}
	recDemo         = recordKind{"demo", 1}
)

// envelope is the stored form of every record.
type envelope struct {
	V uint32          `json:"v"`
	D json.RawMessage `json:"d"`
}

func encodeRecord(kind recordKind, v any) ([]byte, error) {
	d, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s record: %w", kind.name, err)
	}
	return json.Marshal(envelope{V: kind.version, D: d})
}

// decodeRecord unmarshals a stored record into out. json.Unmarshal copies
// everything it keeps, so out never points into bbolt's memory map and stays
// valid after the transaction.
func decodeRecord(kind recordKind, key string, data []byte, out any) error {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("%s record %q is not a valid record: %v: %w", kind.name, key, err, ErrCorruptRecord)
	}
	switch {
	case env.V == 0:
		return fmt.Errorf("%s record %q has no record version: %w", kind.name, key, ErrCorruptRecord)
	case env.V != kind.version:
		return fmt.Errorf("%s record %q has record version %d; this build reads version %d: %w",
			kind.name, key, env.V, kind.version, ErrRecordVersion)
	}
	if err := json.Unmarshal(env.D, out); err != nil {
		return fmt.Errorf("%s record %q (version %d) does not decode: %v: %w", kind.name, key, env.V, err, ErrCorruptRecord)
	}
	return nil
}
