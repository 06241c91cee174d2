package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/store"
)

// ThumbnailSize is the box (pixels) that image thumbnails fit in.
const ThumbnailSize = 320

const (
	filesNamespace = "files"
	filesPrefix    = httpapi.BasePath + "/files/"
)

// File is an uploaded file as the API shows it.
type File struct {
	ID           string    `json:"id" doc:"The file's id, to attach it to a message (attachment_ids)" example:"01938f50-1c2d-7e3f-8a9b-0c1d2e3f4a5b"`
	URL          string    `json:"url" doc:"Where to download it (bearer token, or ?token= for img/video tags)"`
	MIMEType     string    `json:"mime_type" doc:"The type of the stored bytes, detected from the content (images may have been converted)" example:"image/jpeg"`
	Size         int64     `json:"size" doc:"Size of the stored bytes" example:"48213"`
	Width        *int      `json:"width,omitempty" doc:"Images: width in pixels, upright"`
	Height       *int      `json:"height,omitempty" doc:"Images: height in pixels, upright"`
	ThumbnailURL string    `json:"thumbnail_url,omitempty" doc:"Images: a still preview that fits in 320 x 320"`
	Name         string    `json:"name" doc:"The sanitized file name; its extension matches the stored type" example:"beach.jpg"`
	Kind         string    `json:"kind" enum:"image,video,audio,file" doc:"What the content is" example:"image"`
	SHA256       string    `json:"sha256" doc:"Hex SHA-256 of the stored bytes (what the download returns)"`
	OwnerID      string    `json:"owner_id" doc:"Who uploaded it"`
	CreatedAt    time.Time `json:"created_at"`
}

// Access answers whether a user may read a file that is not theirs. The chat package implements
// it: the members of a chat where the file was sent may read it.
type Access interface {
	CanRead(ctx context.Context, userID, fileID string) (bool, error)
}

// Files stores uploads: the content is checked against per-kind allow-lists and limits while it
// streams, images are re-encoded and get a thumbnail, identical contents are stored once, and each
// upload has its own record with its owner. It is safe for concurrent use.
type Files struct {
	blobs        BlobStore
	st           fileStore
	pipe         *pipeline
	limits       map[string]int64
	log          *slog.Logger
	now          func() time.Time
	access       Access      // nil: only owners read
	gate         *uploadGate // per uploader: uploads in progress and per minute
	quota        int64       // bytes a user's files may add up to; 0 = unlimited
	authenticate httpapi.Authenticator
}

// NewFiles returns the upload store over db and blobs with o's limits.
func NewFiles(db *store.DB, blobs BlobStore, o Options) *Files {
	return newFiles(db, blobs, o, newPipelineOptions(o), newUploadGate(o))
}

func newFiles(db *store.DB, blobs BlobStore, o Options, pipe *pipeline, gate *uploadGate) *Files {
	return &Files{blobs: blobs, st: fileStore{db: db}, pipe: pipe, log: optionsLogger(o), now: time.Now, limits: o.MaxBytes,
		access: o.Access, gate: gate, quota: o.StorageQuotaBytes}
}

// quotaExceeded is the refusal of an upload over the storage quota.
func quotaExceeded(quota, used int64) error {
	return apperr.New(apperr.KindForbidden, "quota_exceeded",
		fmt.Sprintf("your files would take more than your storage quota (%d of %d bytes used): delete some first", used, quota))
}

// Usage is what userID's files take against the storage quota.
type Usage struct {
	UsedBytes  int64 `json:"used_bytes" doc:"Sum of the sizes of the caller's files (a content shared by identical uploads counts for each)" example:"48213"`
	QuotaBytes int64 `json:"quota_bytes" doc:"What they may add up to (NERUTALK_STORAGE_QUOTA_BYTES); 0 = no quota" example:"1073741824"`
}

// Usage returns userID's storage use and quota.
func (f *Files) Usage(ctx context.Context, userID string) (Usage, error) {
	used, err := usage(ctx, f.st.db.R, userID)
	if err != nil {
		return Usage{}, err
	}
	return Usage{UsedBytes: used, QuotaBytes: f.quota}, nil
}

// checkQuota refuses (403 quota_exceeded) an upload of about declared bytes (0: unknown) that
// cannot fit in userID's quota, before the body is read. The upload is checked again, exactly,
// when its file is added (fileStore.create).
func (f *Files) checkQuota(ctx context.Context, userID string, declared int64) error {
	if f.quota <= 0 {
		return nil
	}
	used, err := usage(ctx, f.st.db.R, userID)
	if err != nil {
		return err
	}
	if used >= f.quota || used+declared > f.quota {
		return quotaExceeded(f.quota, used)
	}
	return nil
}

// maxUpload is the largest upload of any kind.
func (f *Files) maxUpload() int64 {
	var m int64
	for _, v := range f.limits {
		m = max(m, v)
	}
	return m
}

// Upload stores what r yields as a new file of ownerID. name is the client's file name (only
// shown, after sanitizing). The type is detected from the first bytes and checked before the rest
// is read; the size limit of its kind is enforced while the content streams to storage, and on
// any failure nothing is left stored. Errors: 413 too_large, 415 unsupported_media_type,
// 422 invalid_image / image_too_large / validation_failed (empty file).
func (f *Files) Upload(ctx context.Context, ownerID, name string, r io.Reader) (File, error) {
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return File{}, fmt.Errorf("media: upload: %w", err)
	}
	if n == 0 {
		return File{}, apperr.Invalid("body.file", "the file is empty")
	}
	typ := detectType(head[:n])
	kind, ok := allowed[typ]
	if !ok {
		return File{}, apperr.New(apperr.KindUnsupportedType, "unsupported_media_type",
			fmt.Sprintf("files of type %s are not accepted: send an image (JPEG, PNG, GIF, WebP), a video (MP4, WebM, QuickTime), "+
				"audio (MP3, AAC/M4A, Ogg, WAV) or a document (PDF, text, office, ZIP)", typ))
	}
	body := io.MultiReader(bytes.NewReader(head[:n]), r)
	row := fileRow{ID: uuid.Must(uuid.NewV7()).String(), OwnerID: ownerID, CreatedAt: store.Millis(f.now())}
	var c *content
	if kind == KindImage {
		// Hashed while it is read, so that the hashing is paced with the reading (the
		// router reads large bodies at a pace: internal/httpapi/pace.go).
		h := sha256.New()
		buf := uploadBuffers.Get().(*bytes.Buffer)
		reuse := true // false once data goes to the image pipeline, which may hand it to a worker
		defer func() {
			if reuse {
				putUploadBuffer(buf)
			}
		}()
		data, err := readLimitedInto(buf, io.TeeReader(body, h), f.limits[KindImage])
		if err != nil {
			return File{}, err
		}
		row.SourceSHA256 = hex.EncodeToString(h.Sum(nil))
		// The uploader stored the same image before: share it, without decoding anything. Only
		// their own earlier upload counts. Skipping the work because someone else holds these bytes
		// would answer in milliseconds instead of seconds and tell the uploader so (a timing
		// oracle), so a first upload by this user is always processed in full; create then
		// shares the content row if it exists and the fresh objects are deleted.
		storedMIME, found, err := f.st.ownedContentMIME(ctx, ownerID, row.SourceSHA256)
		if err != nil {
			return File{}, err
		}
		if found {
			row.Name = sanitizeName(name, storedMIME)
			out, err := f.st.create(ctx, row, nil, f.quota)
			if err == nil {
				return f.file(out), nil
			}
			if !errors.Is(err, errContentGone) {
				return File{}, err
			}
		}
		reuse = false // the garbage collector frees buf
		if c, err = f.storeImage(ctx, data, row.SourceSHA256); err != nil {
			return File{}, err
		}
	} else if c, err = f.storeStream(ctx, typ, kind, body, f.limits[kind]); err != nil {
		return File{}, err
	}
	row.SourceSHA256 = c.SourceSHA256
	row.Name = sanitizeName(name, c.MIME)
	out, err := f.st.create(ctx, row, c, f.quota)
	if err != nil {
		f.deleteObjects(ctx, c.keys())
		return File{}, err
	}
	if out.StorageKey != c.StorageKey { // the same content was stored first by another upload or user
		f.deleteObjects(ctx, c.keys())
	}
	return f.file(out), nil
}

// uploadBuffers holds the buffers image uploads are read into, for the uploads that end without
// processing the image (a user's own re-upload, a refusal). Without them each read grew a new
// buffer by doubling, about twice the image in garbage, and a client re-uploading large images in
// a loop kept the node's garbage collector running, which delayed every other user's messages.
var uploadBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledUpload is the largest buffer kept in uploadBuffers.
const maxPooledUpload = 8 << 20

func putUploadBuffer(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledUpload {
		return
	}
	buf.Reset()
	uploadBuffers.Put(buf)
}

// storeImage re-encodes an image, makes its thumbnail and stores both.
func (f *Files) storeImage(ctx context.Context, data []byte, sourceSum string) (*content, error) {
	parts, err := f.pipe.process(ctx, opFile, data)
	if err != nil {
		return nil, err
	}
	full, thumb := parts[0], parts[1]
	id := newBlobID()
	sum := sha256.Sum256(full.data)
	c := &content{
		SourceSHA256: sourceSum, SHA256: hex.EncodeToString(sum[:]), StorageKey: blobKey(filesNamespace, id, ""),
		MIME: full.mime, Kind: KindImage, Size: int64(len(full.data)), Width: full.width, Height: full.height,
		ThumbKey: blobKey(filesNamespace, id, thumbVariant), ThumbMIME: thumb.mime, ThumbSize: int64(len(thumb.data)),
		ThumbWidth: thumb.width, ThumbHeight: thumb.height, CreatedAt: store.Millis(f.now()),
	}
	if _, err := f.blobs.Put(ctx, c.StorageKey, bytes.NewReader(full.data)); err != nil {
		return nil, fmt.Errorf("media: store image: %w", err)
	}
	if _, err := f.blobs.Put(ctx, c.ThumbKey, bytes.NewReader(thumb.data)); err != nil {
		f.deleteObjects(ctx, []string{c.StorageKey})
		return nil, fmt.Errorf("media: store thumbnail: %w", err)
	}
	return c, nil
}

// storeStream streams a non-image upload to storage, hashing it and stopping at max bytes.
func (f *Files) storeStream(ctx context.Context, typ, kind string, r io.Reader, max int64) (*content, error) {
	h := sha256.New()
	key := blobKey(filesNamespace, newBlobID(), "")
	size, err := f.blobs.Put(ctx, key, io.TeeReader(&maxReader{r: io.LimitReader(r, max+1), max: max}, h))
	if err != nil {
		return nil, fmt.Errorf("media: store upload: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return &content{SourceSHA256: sum, SHA256: sum, StorageKey: key, MIME: typ, Kind: kind, Size: size,
		CreatedAt: store.Millis(f.now())}, nil
}

// maxReader fails with 413 as soon as more than max bytes have been read.
type maxReader struct {
	r      io.Reader
	n, max int64
}

func (m *maxReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.n += int64(n)
	if m.n > m.max {
		return n, tooLarge(m.max)
	}
	return n, err
}

// keys are the storage keys of a content.
func (c *content) keys() []string {
	if c.ThumbKey != "" {
		return []string{c.StorageKey, c.ThumbKey}
	}
	return []string{c.StorageKey}
}

// deleteObjects removes objects that no row references any more. A failure only leaks storage,
// so it is logged, not returned; it runs even when ctx (a request) has ended.
func (f *Files) deleteObjects(ctx context.Context, keys []string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, k := range keys {
		if err := f.blobs.Delete(dctx, k); err != nil {
			f.log.WarnContext(ctx, "media: could not delete an unused object; it leaks", "key", k, "err", err)
		}
	}
}

// file converts a row to the API's File.
func (f *Files) file(r fileRow) File {
	out := File{ID: r.ID, MIMEType: r.MIME, Size: r.Size, Name: r.Name, Kind: r.Kind,
		SHA256: r.SHA256, OwnerID: r.OwnerID, CreatedAt: store.Time(r.CreatedAt)}
	out.URL, out.ThumbnailURL = FileURL(r.ID, r.ThumbKey != "")
	if r.Width > 0 {
		w, h := r.Width, r.Height
		out.Width, out.Height = &w, &h
	}
	return out
}

var errFileNotFound = apperr.NotFound("file")

// Get returns a file's metadata (no permission check: for the chat package, which checks that a
// sender attaches their own files). A missing file is a 404 apperr.
func (f *Files) Get(ctx context.Context, id string) (File, error) {
	if _, err := uuid.Parse(id); err != nil {
		return File{}, errFileNotFound
	}
	row, err := f.st.get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return File{}, errFileNotFound
	}
	if err != nil {
		return File{}, err
	}
	return f.file(row), nil
}

// readable returns the file if userID may read it: its owner, or whoever Access allows. Everyone
// else gets 404, as for a file that does not exist.
func (f *Files) readable(ctx context.Context, userID, id string) (fileRow, error) {
	if _, err := uuid.Parse(id); err != nil {
		return fileRow{}, errFileNotFound
	}
	row, err := f.st.get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fileRow{}, errFileNotFound
	}
	if err != nil {
		return fileRow{}, err
	}
	if row.OwnerID == userID {
		return row, nil
	}
	if f.access != nil {
		ok, err := f.access.CanRead(ctx, userID, id)
		if err != nil {
			return fileRow{}, fmt.Errorf("media: access to %s: %w", id, err)
		}
		if ok {
			return row, nil
		}
	}
	return fileRow{}, errFileNotFound
}

// Delete removes a file of userID's. Someone who may read but does not own it gets 403; a file
// still attached to a message 409 file_in_use (deleting the message releases it).
func (f *Files) Delete(ctx context.Context, userID, id string) error {
	row, err := f.readable(ctx, userID, id)
	if err != nil {
		return err
	}
	if row.OwnerID != userID {
		return apperr.Forbidden("only the owner can delete a file")
	}
	errInUse := apperr.New(apperr.KindConflict, "file_in_use", "the file is attached to a message: delete the message instead")
	if row.AttachCount > 0 {
		return errInUse
	}
	deleted, unused, err := f.st.deleteFile(ctx, id, condOwner, userID)
	if err != nil {
		return err
	}
	f.deleteObjects(ctx, unused)
	if !deleted {
		return errInUse // attached meanwhile
	}
	return nil
}

// Attach records that one more message references the file; the file is then never removed as an
// orphan. For the chat package, which must first check that the sender owns the file.
func (f *Files) Attach(ctx context.Context, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return errFileNotFound
	}
	err := f.st.attach(ctx, id, f.now())
	if errors.Is(err, store.ErrNotFound) {
		return errFileNotFound
	}
	return err
}

// AttachTx attaches the files ids, which must all exist and belong to ownerID, inside tx: a
// transaction of the chat package on the same database, so that the message that carries them
// and the attach counts commit together (no crash can leave a message pointing at a file that the
// orphan sweep or its owner then deletes). It locks the files' rows first (PostgreSQL), so a
// concurrent Delete either comes first (and ok is false) or finds the file attached. It returns
// ok false, changing nothing, when one of the files is missing or someone else's. ids must not
// repeat.
func (f *Files) AttachTx(ctx context.Context, tx *sql.Tx, ownerID string, ids []string) (ok bool, err error) {
	if len(ids) == 0 {
		return true, nil
	}
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return false, nil
		}
	}
	sorted := slices.Sorted(slices.Values(ids))
	if n, err := f.st.lockOwned(ctx, tx, ownerID, sorted); err != nil || n != len(ids) {
		return false, err
	}
	if err := f.st.attachMany(ctx, tx, sorted, f.now()); err != nil {
		return false, err
	}
	return true, nil
}

// FileURL is the download URL of file id, and thumbURL its thumbnail's when it has one.
func FileURL(id string, hasThumb bool) (url, thumbURL string) {
	url = filesPrefix + id
	if hasThumb {
		thumbURL = url + "/thumbnail"
	}
	return url, thumbURL
}

// Release records that a message referencing the file is gone; after the last one the file is
// deleted (and its content, unless another file shares it).
func (f *Files) Release(ctx context.Context, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return errFileNotFound
	}
	unused, err := f.st.release(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return errFileNotFound
	}
	if err != nil {
		return err
	}
	f.deleteObjects(ctx, unused)
	return nil
}

// CleanupOrphans deletes the files that were never attached to a message and are older than
// olderThan, and the contents that no file references any more (files deleted with their owner's
// account). It returns how many files it deleted.
func (f *Files) CleanupOrphans(ctx context.Context, olderThan time.Duration) (int, error) {
	const batch = 200
	cutoff := f.now().Add(-olderThan)
	removed := 0
	for {
		ids, err := f.st.orphans(ctx, cutoff, batch)
		if err != nil {
			return removed, err
		}
		for _, id := range ids {
			deleted, unused, err := f.st.deleteFile(ctx, id, condOrphan, store.Millis(cutoff))
			if err != nil {
				return removed, err
			}
			if deleted {
				removed++
			}
			f.deleteObjects(ctx, unused)
		}
		if len(ids) < batch {
			break
		}
	}
	for {
		sources, err := f.st.unreferencedContents(ctx, f.now(), batch)
		if err != nil {
			return removed, err
		}
		for _, s := range sources {
			unused, err := f.st.deleteContentIfUnreferenced(ctx, s)
			if err != nil {
				return removed, err
			}
			f.deleteObjects(ctx, unused)
		}
		if len(sources) < batch {
			return removed, nil
		}
	}
}

// StartCleanup runs CleanupOrphans every interval in a goroutine until the returned stop
// function is called; stop waits for a sweep in progress (at most until its ctx ends).
func (f *Files) StartCleanup(interval, olderThan time.Duration) (stop func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n, err := f.CleanupOrphans(ctx, olderThan)
				if err != nil && ctx.Err() == nil {
					f.log.Error("media: orphan cleanup failed", "err", err)
				} else if n > 0 {
					f.log.Info("media: orphan uploads removed", "files", n)
				}
			}
		}
	}()
	return func(sctx context.Context) {
		cancel()
		select {
		case <-done:
		case <-sctx.Done():
		}
	}
}
