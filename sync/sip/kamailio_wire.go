package sip

import (
	"errors"
	"fmt"
)

// newBusyTable builds the Kamailio jsonrpcs client of writer kamailio.
//
// TODO(merge): the client lives in kamailio.go (branch sip-kamailio). When
// it lands, this becomes:
//
//	hc := cfg.HTTPClient
//	if hc == nil {
//		hc = &http.Client{Timeout: cfg.RequestTimeout}
//	}
//	return newKamailioRPC(cfg.RPCURL, cfg.HTable, hc)
//
// Until then writer kamailio is refused at New, plainly, instead of
// pretending to protect calls.
func newBusyTable(cfg Config) (busyTable, error) {
	return nil, fmt.Errorf("sip.writer kamailio (sip.rpc_url %s): %w", cfg.RPCURL, errNoKamailioClient)
}

var errNoKamailioClient = errors.New("this build has no Kamailio RPC client yet; use sip.writer publish or none")
