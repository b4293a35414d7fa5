package sip

import "net/http"

// newBusyTable builds the Kamailio jsonrpcs client of writer kamailio
// (kamailio.go). Its HTTP client is bounded by the SIP request timeout so a
// hung RPC cannot hold a write for long.
func newBusyTable(cfg Config) (busyTable, error) {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.RequestTimeout}
	}
	k, err := newKamailioRPC(cfg.RPCURL, cfg.HTable, hc)
	if err != nil {
		return nil, err
	}
	return k, nil
}
