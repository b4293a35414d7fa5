package sync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// NetProblem is what kind of connection error an error is, for the fix
// line an admin gets.
type NetProblem uint8

// The connection problems NetFix knows.
const (
	NetOther               NetProblem = iota // not a connection problem NetFix knows
	NetDNS                                   // the name does not resolve, or DNS does not answer
	NetRefused                               // nothing listens on host:port, or a firewall rejects
	NetUnreachable                           // no route to the host or network
	NetTimeout                               // the host does not answer in time
	NetTLSUnknownAuthority                   // the certificate's issuer is not trusted here
	NetTLSHostname                           // the certificate is for another name
	NetTLSExpired                            // the certificate expired or is not valid yet
	NetTLSHandshake                          // the TLS handshake failed (not TLS, alert)
)

func (p NetProblem) String() string {
	switch p {
	case NetDNS:
		return "dns"
	case NetRefused:
		return "refused"
	case NetUnreachable:
		return "unreachable"
	case NetTimeout:
		return "timeout"
	case NetTLSUnknownAuthority:
		return "tls-unknown-authority"
	case NetTLSHostname:
		return "tls-hostname"
	case NetTLSExpired:
		return "tls-expired"
	case NetTLSHandshake:
		return "tls-handshake"
	}
	return "other"
}

// Windows reports socket errors as WSA codes, which syscall's portable
// names (ECONNREFUSED, ...) do not match there.
const (
	wsaENETUNREACH  = syscall.Errno(10051)
	wsaETIMEDOUT    = syscall.Errno(10060)
	wsaECONNREFUSED = syscall.Errno(10061)
	wsaEHOSTUNREACH = syscall.Errno(10065)
)

// ClassifyNet says what kind of connection problem err is. It looks
// through wrapping (url.Error, net.OpError, tls.CertificateVerificationError
// and %w chains). A cancelled context is not a connection problem.
func ClassifyNet(err error) NetProblem {
	if err == nil {
		return NetOther
	}
	// DNS first: a DNS error also says Timeout() when the server is silent.
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return NetDNS
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return NetTLSUnknownAuthority
	}
	var host x509.HostnameError
	if errors.As(err, &host) {
		return NetTLSHostname
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		return NetTLSExpired
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED, wsaECONNREFUSED:
			return NetRefused
		case syscall.ENETUNREACH, syscall.EHOSTUNREACH, wsaENETUNREACH, wsaEHOSTUNREACH:
			return NetUnreachable
		case syscall.ETIMEDOUT, wsaETIMEDOUT:
			return NetTimeout
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return NetTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return NetTimeout
	}
	if notTLS(err) {
		return NetTLSHandshake
	}
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var op *net.OpError
	if errors.As(err, &alert) || errors.As(err, &verify) || errors.As(err, &invalid) ||
		(errors.As(err, &op) && op.Op == "remote error") { // the peer sent a TLS alert
		return NetTLSHandshake
	}
	return NetOther
}

// notTLS reports whether the server answered a TLS hello with something
// else. net/http turns the tls.RecordHeaderError of a plain HTTP answer
// into an error of its own that only its text identifies.
func notTLS(err error) bool {
	var rec tls.RecordHeaderError
	return errors.As(err, &rec) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// NetFix returns the line that tells an admin how to fix a connection
// error, naming the host (and port) it concerns and setting, the key of the
// setting that names the server (e.g. "ucserver.url"). It returns "" for an
// error that is not a connection problem it knows (NetOther).
func NetFix(err error, setting string) string {
	p := ClassifyNet(err)
	if p == NetOther {
		return ""
	}
	where := netTarget(err)
	switch p {
	case NetDNS:
		var dns *net.DNSError
		errors.As(err, &dns)
		name := dns.Name
		if name == "" {
			name = where
		}
		if dns.IsTimeout || dns.IsTemporary {
			return fmt.Sprintf("the DNS server does not answer for %q: check this machine's DNS server settings (/etc/resolv.conf or the network settings) and that the DNS server is reachable", name)
		}
		return fmt.Sprintf("the name %q does not resolve: check the host name in %s, and this machine's DNS server (/etc/resolv.conf or the network settings)", name, setting)
	case NetRefused:
		return fmt.Sprintf("%s refused the connection: is the service running there, is the port in %s right, or does a firewall reject the connection?", where, setting)
	case NetUnreachable:
		return fmt.Sprintf("no route to %s: check this machine's network and routing, firewalls on the way, and the host in %s", where, setting)
	case NetTimeout:
		return fmt.Sprintf("%s does not answer: check the routing, firewalls and any proxy (HTTPS_PROXY) between this machine and it, and the host and port in %s", where, setting)
	case NetTLSUnknownAuthority:
		var u x509.UnknownAuthorityError
		errors.As(err, &u)
		issuer := ""
		if u.Cert != nil {
			issuer = fmt.Sprintf(" (issuer %q)", certName(u.Cert.Issuer.CommonName, u.Cert.Issuer.String()))
		}
		return fmt.Sprintf("the TLS certificate of %s is signed by an authority this machine does not trust%s: add that CA certificate to the system's trust store, or point SSL_CERT_FILE at a PEM file holding it; and check that %s names the right server", where, issuer, setting)
	case NetTLSHostname:
		var h x509.HostnameError
		errors.As(err, &h)
		names := "other names"
		if h.Certificate != nil {
			var all []string
			all = append(all, h.Certificate.DNSNames...)
			for _, ip := range h.Certificate.IPAddresses {
				all = append(all, ip.String())
			}
			if len(all) == 0 && h.Certificate.Subject.CommonName != "" {
				all = append(all, h.Certificate.Subject.CommonName)
			}
			if len(all) > 0 {
				names = strings.Join(all, ", ")
			}
		}
		return fmt.Sprintf("the TLS certificate of %s is for %s, not %q: the host in %s must be one of the names on the certificate (or the server needs a certificate for that name)", where, names, h.Host, setting)
	case NetTLSExpired:
		var inv x509.CertificateInvalidError
		errors.As(err, &inv)
		when := ""
		if inv.Cert != nil {
			when = fmt.Sprintf(" (valid %s to %s)", inv.Cert.NotBefore.UTC().Format(time.DateOnly), inv.Cert.NotAfter.UTC().Format(time.DateOnly))
		}
		return fmt.Sprintf("the TLS certificate of %s has expired or is not valid yet%s: renew it on the server, and check this machine's clock; %s names that server", where, when, setting)
	case NetTLSHandshake:
		if notTLS(err) {
			return fmt.Sprintf("%s does not speak TLS on this port: use the port of its https service in %s, or http:// if it has none", where, setting)
		}
		return fmt.Sprintf("the TLS handshake with %s failed: the server's TLS settings (protocol version, ciphers, client certificate) do not match this client's (TLS 1.2 or newer); check the server and %s", where, setting)
	}
	return ""
}

func certName(cn, full string) string {
	if cn != "" {
		return cn
	}
	return full
}

// netTarget is the host:port (or host) an error concerns, for the fix.
func netTarget(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return op.Addr.String()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			if u.Port() != "" {
				return u.Host
			}
			switch u.Scheme {
			case "https", "wss":
				return net.JoinHostPort(u.Hostname(), "443")
			case "http", "ws":
				return net.JoinHostPort(u.Hostname(), "80")
			}
			return u.Host
		}
	}
	var h x509.HostnameError
	if errors.As(err, &h) && h.Host != "" {
		return h.Host
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.Name != "" {
		return dns.Name
	}
	return "the server"
}
