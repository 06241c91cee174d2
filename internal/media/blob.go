package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"regexp"
	"time"
)

// BlobStore keeps immutable objects (the bytes of uploads, thumbnails and avatars) under keys that
// the media package chooses: a namespace, a random hex id and an optional variant, e.g.
// "files/0f3a...c9" or "avatars/0f3a...c9.thumb". Keys never contain user input. Objects are
// written once and never modified; a second Put of the same key replaces the object as a whole.
//
// Implementations: DiskStore (a folder) and S3Store (any S3-compatible service).
type BlobStore interface {
	// Put stores everything r yields under key and returns the number of bytes stored. When r
	// fails, or ctx ends, nothing is left behind (no partial object, no temporary file) and the
	// error is returned.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Get streams the object from byte off, n bytes (n < 0: to the end). off may equal the size
	// (an empty stream); beyond it the error is ErrInvalidRange. The caller closes the reader.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Stat returns the object's size and modification time.
	Stat(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Presign returns a URL that lets anyone download the object for ttl, or ErrPresignUnsupported.
	Presign(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// BlobInfo describes a stored object.
type BlobInfo struct {
	Size    int64
	ModTime time.Time
}

// Errors of the blob stores (wrapped; test with errors.Is).
var (
	ErrBlobNotFound        = errors.New("media: blob not found")
	ErrInvalidKey          = errors.New("media: invalid blob key")
	ErrInvalidRange        = errors.New("media: range beyond the end of the blob")
	ErrPresignUnsupported  = errors.New("media: this blob store cannot presign URLs")
	errNegativeRangeOffset = errors.New("media: negative range offset")
)

// keyPattern is the shape of every blob key: namespace/hex-id[.variant].
var keyPattern = regexp.MustCompile(`^([a-z]{1,16})/([0-9a-f]{16,64})(\.[a-z0-9]{1,16})?$`)

// validKey reports whether key has the shape the media package generates.
func validKey(key string) bool { return keyPattern.MatchString(key) }

// newBlobID returns a random, unguessable 128-bit id in hex.
func newBlobID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("media: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// blobKey builds a key from its parts; variant may be empty.
func blobKey(namespace, id, variant string) string {
	if variant != "" {
		return namespace + "/" + id + "." + variant
	}
	return namespace + "/" + id
}

// checkOffset checks Get's off.
func checkOffset(off int64) error {
	if off < 0 {
		return errNegativeRangeOffset
	}
	return nil
}

// emptyReadCloser is an empty stream.
type emptyReadCloser struct{}

func (emptyReadCloser) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyReadCloser) Close() error             { return nil }
