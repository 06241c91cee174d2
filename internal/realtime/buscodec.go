package realtime

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// busCodecVersion is the first byte of every encoded bus entry. A node that reads an entry of
// another version (a rolling upgrade that changed the format) skips it and counts it.
const busCodecVersion = 1

// maxBusUsers bounds the user list of one decoded entry, so a corrupt length cannot make the
// decoder allocate without limit.
const maxBusUsers = 1 << 20

var errBusEntry = errors.New("realtime: malformed bus entry")

// busEntry is what a node writes to the shared stream: a Message with its origin.
type busEntry struct {
	Node string // the publishing node's id
	Seq  uint64 // the publishing node's counter: 1, 2, 3... with no gaps
	Msg  Message
}

// appendBusEntry encodes e compactly: the frame is carried as raw bytes (JSON would base64 it).
//
//	version | kind | uvarint seq | str node | str topic | str except_user | uvarint n | n × str user | frame
//
// where str is a uvarint length followed by the bytes, and the frame takes the rest.
func appendBusEntry(b []byte, e busEntry) []byte {
	b = append(b, busCodecVersion, byte(e.Msg.Kind))
	b = binary.AppendUvarint(b, e.Seq)
	b = appendBusString(b, e.Node)
	b = appendBusString(b, e.Msg.Topic)
	b = appendBusString(b, e.Msg.ExceptUser)
	b = binary.AppendUvarint(b, uint64(len(e.Msg.Users)))
	for _, u := range e.Msg.Users {
		b = appendBusString(b, u)
	}
	return append(b, e.Msg.Frame...)
}

func appendBusString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeBusEntry is the inverse of appendBusEntry. The returned Frame aliases b.
func decodeBusEntry(b []byte) (busEntry, error) {
	d := busDecoder{b: b}
	if v := d.byte(); v != busCodecVersion {
		if d.err != nil {
			return busEntry{}, d.err
		}
		return busEntry{}, fmt.Errorf("%w: version %d", errBusEntry, v)
	}
	var e busEntry
	e.Msg.Kind = MessageKind(d.byte())
	e.Seq = d.uvarint()
	e.Node = d.string()
	e.Msg.Topic = d.string()
	e.Msg.ExceptUser = d.string()
	n := d.uvarint()
	if n > maxBusUsers || n > uint64(len(d.b)) { // every user takes at least one byte
		return busEntry{}, fmt.Errorf("%w: %d users", errBusEntry, n)
	}
	if n > 0 {
		e.Msg.Users = make([]string, n)
		for i := range e.Msg.Users {
			e.Msg.Users[i] = d.string()
		}
	}
	if d.err != nil {
		return busEntry{}, d.err
	}
	if e.Msg.Kind < KindUsers || e.Msg.Kind > KindPresence {
		return busEntry{}, fmt.Errorf("%w: kind %d", errBusEntry, e.Msg.Kind)
	}
	if len(d.b) > 0 {
		e.Msg.Frame = d.b
	}
	return e, nil
}

// busDecoder reads fields off b; after the first error every read returns zero and err stays set.
type busDecoder struct {
	b   []byte
	err error
}

func (d *busDecoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *busDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *busDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *busDecoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errBusEntry, why)
	}
}
