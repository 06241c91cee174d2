package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DiskStore keeps blobs in a local folder. A key "ns/0f3a9c..." lives at root/ns/0f/3a/0f3a9c...
// (two levels of sharding keep folders small). Writes go to root/.tmp first and are renamed into
// place after fsync, so a reader sees a whole object or none, and a failed write leaves nothing.
//
// It is safe for concurrent use: every operation is a single filesystem call sequence on its own
// files, and rename is atomic.
type DiskStore struct {
	root string
	tmp  string
}

// NewDiskStore opens (creating it when needed) the blob folder root and removes temporary files
// that a crash left behind.
func NewDiskStore(root string) (*DiskStore, error) {
	d := &DiskStore{root: root, tmp: filepath.Join(root, ".tmp")}
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("media: disk store: %w", err)
	}
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return nil, fmt.Errorf("media: disk store: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			_ = os.Remove(filepath.Join(d.tmp, e.Name()))
		}
	}
	return d, nil
}

// path maps a key to its file; the key's shape is checked, so no path can escape the root.
func (d *DiskStore) path(key string) (string, error) {
	m := keyPattern.FindStringSubmatch(key)
	if m == nil {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	id := m[2]
	return filepath.Join(d.root, m[1], id[0:2], id[2:4], id+m[3]), nil
}

// Put writes r to a temporary file, syncs it and renames it into place.
func (d *DiskStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	p, err := d.path(key)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(d.tmp, "put-*")
	if err != nil {
		return 0, fmt.Errorf("media: disk put: %w", err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return 0, fmt.Errorf("media: disk put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("media: disk put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("media: disk put %s: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, fmt.Errorf("media: disk put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return 0, fmt.Errorf("media: disk put %s: %w", key, err)
	}
	done = true
	syncDir(filepath.Dir(p))
	return n, nil
}

// syncDir makes a rename durable; failure only weakens durability, so it is ignored.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// Open returns the object as a seekable file (the HTTP layer serves it with sendfile).
func (d *DiskStore) Open(ctx context.Context, key string) (ReadSeekCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, diskErr("open", key, err)
	}
	return f, nil
}

// Get opens the object and positions it at off.
func (d *DiskStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkOffset(off); err != nil {
		return nil, err
	}
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, diskErr("get", key, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, diskErr("get", key, err)
	}
	if off > info.Size() {
		f.Close()
		return nil, fmt.Errorf("media: disk get %s: %w", key, ErrInvalidRange)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, diskErr("get", key, err)
	}
	if n < 0 {
		return f, nil
	}
	return limitedReadCloser{io.LimitReader(f, n), f}, nil
}

// Stat reports the object's size and modification time.
func (d *DiskStore) Stat(ctx context.Context, key string) (BlobInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return BlobInfo{}, err
	}
	info, err := os.Stat(p)
	if err != nil {
		return BlobInfo{}, diskErr("stat", key, err)
	}
	return BlobInfo{Size: info.Size(), ModTime: info.ModTime()}, nil
}

// Delete removes the object's file; a missing file is fine. Empty shard folders are left (they
// are reused).
func (d *DiskStore) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("media: disk delete %s: %w", key, err)
	}
	return nil
}

// Presign is not possible for a local folder: the server streams local blobs itself.
func (d *DiskStore) Presign(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if _, err := d.path(key); err != nil {
		return "", err
	}
	return "", ErrPresignUnsupported
}

func diskErr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("media: disk %s %s: %w", op, key, ErrBlobNotFound)
	}
	return fmt.Errorf("media: disk %s %s: %w", op, strings.TrimSpace(key), err)
}

// ReadSeekCloser is a seekable object stream.
type ReadSeekCloser interface {
	io.ReadSeeker
	io.Closer
}

type limitedReadCloser struct {
	io.Reader
	io.Closer
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
