package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// The image worker's wire format (see worker.go). Both directions are one message, written once
// and read to EOF; every integer is big-endian and every variable field is length-prefixed.
//
// Job (server -> worker, on the worker's stdin):
//
//	"NTIJ" | version u8 (1) | op u8 | maxPixels u64 | len u32 | image bytes
//
// Result (worker -> server, on its stdout):
//
//	"NTIR" | version u8 (1) | status u8
//	status 0 (ok):    count u8 (2: the image and its thumbnail, or both avatar sizes), then
//	                  count parts of mimeLen u8 | mime | width u32 | height u32 | len u32 | bytes
//	status 1 (error): kind u8 | codeLen u8 | code | detailLen u16 | detail
//
// The worker is our own binary, but it has just parsed hostile input, so the server reads its
// result as untrusted: parseResult checks every length against what is left and against
// maxResultBytes, accepts only the MIME types the pipeline writes, sane dimensions and an
// apperr kind and code of the expected shape, and refuses trailing bytes (FuzzParseResult).

const (
	jobMagic      = "NTIJ"
	resultMagic   = "NTIR"
	protoVersion  = 1
	jobHeaderLen  = 4 + 1 + 1 + 8 + 4
	maxJobBytes   = 1 << 30
	maxPartPixels = 1 << 20 // largest width or height of an output (outputs are at most the input's size)
	// maxResultBytes bounds what the server reads from a worker: the re-encoded image and its
	// thumbnail are far smaller than this for any image under the pixel limit.
	maxResultBytes = 512 << 20
	maxCodeLen     = 64
	maxDetailLen   = 1024
)

// The jobs a worker runs.
const (
	opFile   byte = 1 // POST /files: the re-encoded image and its thumbnail
	opAvatar byte = 2 // an avatar: AvatarSize and AvatarThumbSize JPEGs
)

const (
	statusOK  byte = 0
	statusErr byte = 1
)

var errBadResult = errors.New("media: malformed image worker result")

// encodeJobHeader returns the header of a job; the image bytes follow it.
func encodeJobHeader(op byte, maxPixels int64, n int) []byte {
	b := make([]byte, 0, jobHeaderLen)
	b = append(b, jobMagic...)
	b = append(b, protoVersion, op)
	b = binary.BigEndian.AppendUint64(b, uint64(maxPixels))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return b
}

// readJob reads a job from r (the worker's stdin).
func readJob(r io.Reader) (op byte, maxPixels int64, data []byte, err error) {
	var h [jobHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, fmt.Errorf("media: read job header: %w", err)
	}
	if string(h[:4]) != jobMagic || h[4] != protoVersion {
		return 0, 0, nil, errors.New("media: not an image job")
	}
	op = h[5]
	if op != opFile && op != opAvatar {
		return 0, 0, nil, fmt.Errorf("media: unknown image job %d", op)
	}
	mp := binary.BigEndian.Uint64(h[6:14])
	n := binary.BigEndian.Uint32(h[14:18])
	if mp == 0 || mp > 1<<40 || n > maxJobBytes {
		return 0, 0, nil, errors.New("media: image job out of range")
	}
	data = make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, 0, nil, fmt.Errorf("media: read job: %w", err)
	}
	return op, int64(mp), data, nil
}

// encodeResult writes the outputs of a job that succeeded.
func encodeResult(w io.Writer, parts ...encodedImage) error {
	b := append([]byte(resultMagic), protoVersion, statusOK, byte(len(parts)))
	for _, p := range parts {
		b = append(b, byte(len(p.mime)))
		b = append(b, p.mime...)
		b = binary.BigEndian.AppendUint32(b, uint32(p.width))
		b = binary.BigEndian.AppendUint32(b, uint32(p.height))
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.data)))
		if _, err := w.Write(b); err != nil {
			return err
		}
		if _, err := w.Write(p.data); err != nil {
			return err
		}
		b = b[:0]
	}
	_, err := w.Write(b)
	return err
}

// encodeError writes the failure of a job as an apperr: the client's fault (an invalid image)
// keeps its kind, code and detail; anything else is internal, with the message as its detail
// (logged by the server, never shown).
func encodeError(w io.Writer, err error) error {
	e := &apperr.Error{Kind: apperr.KindInternal, Code: "image_worker_error", Detail: err.Error()}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		e = ae
	}
	code, detail := e.Code, e.Detail
	if len(code) > maxCodeLen || !validCode(code) {
		code = "image_worker_error"
	}
	if len(detail) > maxDetailLen {
		detail = detail[:maxDetailLen]
	}
	b := append([]byte(resultMagic), protoVersion, statusErr, byte(e.Kind), byte(len(code)))
	b = append(b, code...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(detail)))
	b = append(b, detail...)
	_, err = w.Write(b)
	return err
}

func validCode(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// workerMIMEs are the types the pipeline writes.
var workerMIMEs = map[string]bool{mimeJPEG: true, mimePNG: true, mimeGIF: true}

// parseResult reads a worker's result: its outputs, or the error the job ended with (an
// *apperr.Error of a known kind). A malformed result is errBadResult.
func parseResult(b []byte) ([]encodedImage, error) {
	if len(b) > maxResultBytes {
		return nil, errBadResult
	}
	r := resultReader{b: b}
	if string(r.next(4)) != resultMagic || r.byte() != protoVersion {
		return nil, errBadResult
	}
	switch r.byte() {
	case statusOK:
		n := int(r.byte())
		if r.bad || n != 2 {
			return nil, errBadResult
		}
		parts := make([]encodedImage, 0, n)
		for range n {
			var p encodedImage
			p.mime = string(r.next(int(r.byte())))
			p.width, p.height = int(r.u32()), int(r.u32())
			p.data = r.next(int(r.u32()))
			if r.bad || !workerMIMEs[p.mime] || p.width < 1 || p.height < 1 ||
				p.width > maxPartPixels || p.height > maxPartPixels || len(p.data) == 0 {
				return nil, errBadResult
			}
			parts = append(parts, p)
		}
		if len(r.b) != 0 {
			return nil, errBadResult
		}
		return parts, nil
	case statusErr:
		kind := apperr.Kind(r.byte())
		code := string(r.next(int(r.byte())))
		detail := string(r.next(int(r.u16())))
		if r.bad || len(r.b) != 0 || kind > apperr.KindUnavailable || !validCode(code) || len(code) > maxCodeLen || len(detail) > maxDetailLen {
			return nil, errBadResult
		}
		return nil, &apperr.Error{Kind: kind, Code: code, Detail: detail}
	}
	return nil, errBadResult
}

// resultReader reads fields off b; any read past the end sets bad and returns zeros.
type resultReader struct {
	b   []byte
	bad bool
}

func (r *resultReader) next(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *resultReader) byte() byte {
	if b := r.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *resultReader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *resultReader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
