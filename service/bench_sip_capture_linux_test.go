//go:build linux

package service

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// loopCapture reads every frame on the loopback interface through an
// AF_PACKET raw socket (root or CAP_NET_RAW) and hands each UDP/IPv4
// payload, with the kernel's receive time, to match. The kernel time is
// when the packet crossed lo, not when this goroutine got around to it.
type loopCapture struct {
	fd   int
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const ethPAll = 0x0003

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startLoopCapture opens the raw socket on lo; match runs on the capture
// goroutine for each UDP payload to dstPort.
func startLoopCapture(dstPort int, match func(at time.Time, payload []byte)) (*loopCapture, error) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return nil, fmt.Errorf("loopback interface: %w", err)
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(ethPAll)))
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET raw socket: %w (needs root or CAP_NET_RAW)", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind to lo: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	// a read timeout lets the loop see stop
	tv := syscall.NsecToTimeval(int64(100 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<20)
	c := &loopCapture{fd: fd, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop(dstPort, match)
	return c, nil
}

func (c *loopCapture) loop(dstPort int, match func(time.Time, []byte)) {
	defer close(c.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, oobn, _, from, err := syscall.Recvmsg(c.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		// lo shows each packet twice: sent (PACKET_OUTGOING) and received;
		// the outgoing copy is the moment it went on the wire.
		if ll, ok := from.(*syscall.SockaddrLinklayer); !ok || ll.Pkttype != syscall.PACKET_OUTGOING {
			continue
		}
		at := kernelTime(oob[:oobn])
		if payload, ok := udpPayload(buf[:n], dstPort); ok {
			match(at, payload)
		}
	}
}

// kernelTime reads SCM_TIMESTAMPNS; without one, now.
func kernelTime(oob []byte) time.Time {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
				ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
				return time.Unix(ts.Unix())
			}
		}
	}
	return time.Now()
}

// udpPayload parses an Ethernet frame (lo's header is 14 zero bytes and
// the EtherType) holding IPv4/UDP to dstPort.
func udpPayload(frame []byte, dstPort int) ([]byte, bool) {
	if len(frame) < 14+20+8 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return nil, false
	}
	ip := frame[14:]
	if ip[0]>>4 != 4 || ip[9] != 17 {
		return nil, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total > len(ip) || total < ihl+8 {
		return nil, false
	}
	if off := binary.BigEndian.Uint16(ip[6:8]); off&0x3fff != 0 {
		return nil, false // a fragment: SIP on loopback is not fragmented
	}
	udp := ip[ihl:total]
	if int(binary.BigEndian.Uint16(udp[2:4])) != dstPort {
		return nil, false
	}
	return udp[8:], true
}

func (c *loopCapture) close() {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		syscall.Close(c.fd)
	})
}
