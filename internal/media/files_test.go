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
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// testClock is a settable clock.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

type filesEnv struct {
	files *Files
	db    *store.DB
	blobs BlobStore
	root  string // the disk store's folder, "" for S3
	clock *testClock
}

func newFilesEnv(t *testing.T, db *store.DB, blobs BlobStore, mutate func(*config.Config)) *filesEnv {
	t.Helper()
	cfg := config.Default()
	if mutate != nil {
		mutate(&cfg)
	}
	e := &filesEnv{db: db, blobs: blobs, clock: &testClock{}}
	e.clock.ms.Store(time.Now().UnixMilli())
	e.files = NewFiles(db, blobs, FromConfig(cfg, nil))
	e.files.now = e.clock.now
	if d, ok := blobs.(*DiskStore); ok {
		e.root = d.root
	}
	return e
}

func diskEnv(t *testing.T, db *store.DB, mutate func(*config.Config)) *filesEnv {
	t.Helper()
	d, err := NewDiskStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newFilesEnv(t, db, d, mutate)
}

var userSeq atomic.Int64

// createUser inserts a minimal account row.
func createUser(t *testing.T, db *store.DB) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	name := fmt.Sprintf("user%d", userSeq.Add(1))
	_, err := db.W.ExecContext(context.Background(), `INSERT INTO users (id, username, email, display_name,
		password_hash, username_key, display_key, created_at, updated_at) VALUES ($1, $2, $3, $2, 'x', $2, $2, 0, 0)`,
		id, name+id[:8], name+id[:8]+"@example.com")
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return id
}

// objects lists the objects of a disk store (and fails on temporary files left behind).
func (e *filesEnv) objects(t *testing.T) []string {
	t.Helper()
	if e.root == "" {
		t.Fatal("objects() needs the disk store")
	}
	var out []string
	err := filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.Contains(p, string(filepath.Separator)+".tmp"+string(filepath.Separator)) {
			t.Errorf("temporary file left behind: %s", p)
			return nil
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *filesEnv) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.W.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUploadKinds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := diskEnv(t, db, nil)
		owner := createUser(t, db)
		ctx := context.Background()
		for _, s := range samples(t) {
			t.Run(s.name, func(t *testing.T) {
				f, err := e.files.Upload(ctx, owner, "upload."+strings.ReplaceAll(s.name, " ", ""), bytes.NewReader(s.data))
				if s.mime == "" {
					wantErrCode(t, err, apperr.KindUnsupportedType, "unsupported_media_type")
					return
				}
				if err != nil {
					t.Fatalf("upload: %v", err)
				}
				if f.MIMEType != s.mime || f.Kind != s.kind || f.Size != int64(len(s.data)) || f.SHA256 != sha(s.data) {
					t.Errorf("got %s %s %d bytes %s; want %s %s %d bytes %s", f.MIMEType, f.Kind, f.Size, f.SHA256,
						s.mime, s.kind, len(s.data), sha(s.data))
				}
				if f.Width != nil || f.ThumbnailURL != "" || f.OwnerID != owner || f.URL != "/api/v1/files/"+f.ID {
					t.Errorf("unexpected fields: %+v", f)
				}
				if !strings.HasSuffix(f.Name, extensions[s.mime]) {
					t.Errorf("name %q does not end in %s", f.Name, extensions[s.mime])
				}
				row, err := e.files.st.get(ctx, f.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got := getBytes(t, e.blobs, row.StorageKey, 0, -1); !bytes.Equal(got, s.data) {
					t.Errorf("stored bytes differ from the upload")
				}
			})
		}
	})
}

func TestUploadImage(t *testing.T) {
	t.Parallel()
	for name, open := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, store.SQLite)
			e := newFilesEnv(t, db, open(t), nil)
			owner := createUser(t, db)
			ctx := context.Background()
			photo := withSegment(encodeJPEG(t, quadrants(600, 400)), exifSegment(6, true))
			f, err := e.files.Upload(ctx, owner, `C:\Users\me\..\IMG_0001.JPEG`, bytes.NewReader(photo))
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != KindImage || f.MIMEType != mimeJPEG || f.Width == nil || *f.Width != 400 || *f.Height != 600 ||
				f.ThumbnailURL != f.URL+"/thumbnail" || f.Name != "IMG_0001.JPEG" {
				t.Fatalf("got %+v (w %v h %v)", f, f.Width, f.Height)
			}
			row, err := e.files.st.get(ctx, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			stored := getBytes(t, e.blobs, row.StorageKey, 0, -1)
			if sha(stored) != f.SHA256 || int64(len(stored)) != f.Size {
				t.Errorf("sha256/size do not describe the stored bytes")
			}
			thumb := getBytes(t, e.blobs, row.ThumbKey, 0, -1)
			if row.ThumbWidth != 213 || row.ThumbHeight != 320 || int64(len(thumb)) != row.ThumbSize || row.ThumbMIME != mimeJPEG {
				t.Errorf("thumbnail %dx%d %d bytes %s; want 213x320 jpeg of %d bytes", row.ThumbWidth, row.ThumbHeight, row.ThumbSize, row.ThumbMIME, len(thumb))
			}
			for _, b := range [][]byte{stored, thumb} {
				if bytes.Contains(b, []byte("GPSSECRET")) || bytes.Contains(b, []byte("Exif")) {
					t.Errorf("EXIF/GPS survived")
				}
			}
			// A WebP is stored as JPEG and named so.
			w, err := e.files.Upload(ctx, owner, "pic.webp", bytes.NewReader(readTestdata(t, "blue-purple-pink.lossy.webp")))
			if err != nil || w.MIMEType != mimeJPEG || w.Name != "pic.jpg" {
				t.Errorf("webp: %+v, %v", w, err)
			}
		})
	}
}

func TestUploadLimitsLeaveNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := diskEnv(t, db, func(c *config.Config) {
			c.MediaMaxImageBytes, c.MediaMaxFileBytes, c.MediaMaxVideoBytes = 50_000, 100_000, 300_000
		})
		owner := createUser(t, db)
		ctx := context.Background()
		bigPNG := encodePNG(t, randomImage(200, 200)) // about 160 kB
		tests := []struct {
			name string
			data []byte
			kind apperr.Kind
			code string
		}{
			{"image over its limit", bigPNG, apperr.KindTooLarge, "too_large"},
			{"document over its limit", append([]byte("%PDF-1.4\n"), make([]byte, 100_000)...), apperr.KindTooLarge, "too_large"},
			{"empty", nil, apperr.KindInvalid, "validation_failed"},
			{"truncated image", bigPNG[:40_000], apperr.KindInvalid, "invalid_image"},
		}
		for _, tt := range tests {
			_, err := e.files.Upload(ctx, owner, "x", bytes.NewReader(tt.data))
			wantErrCode(t, err, tt.kind, tt.code)
		}
		// A video under the video limit but over the document limit is fine.
		video := pad([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), 200_000)
		if _, err := e.files.Upload(ctx, owner, "v.mp4", bytes.NewReader(video)); err != nil {
			t.Fatalf("video within its limit: %v", err)
		}
		if got := len(e.objects(t)); got != 1 {
			t.Errorf("%d objects stored, want only the video's", got)
		}
		if n := e.count(t, "files"); n != 1 {
			t.Errorf("%d files rows, want 1", n)
		}
		// A failing client stream (connection dropped) leaves nothing either.
		boom := errors.New("connection reset")
		_, err := e.files.Upload(ctx, owner, "x", &failingReader{data: pad([]byte("%PDF-1.4\n"), 50_000), err: boom})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want the read error", err)
		}
		if got := len(e.objects(t)); got != 1 {
			t.Errorf("%d objects after a failed upload, want 1", got)
		}
	})
}

func randomImage(w, h int) *imageRGBA {
	img := newRGBA(w, h)
	seed := uint32(1)
	for i := range img.Pix {
		seed = seed*1664525 + 1013904223
		img.Pix[i] = uint8(seed >> 24)
	}
	return img
}

func TestDedupAndReferenceCounting(t *testing.T) {
	t.Parallel()
	for name, open := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				t.Parallel()
				e := newFilesEnv(t, db, open(t), nil)
				alice, bob := createUser(t, db), createUser(t, db)
				ctx := context.Background()
				for _, data := range [][]byte{encodePNG(t, quadrants(64, 48)), []byte("%PDF-1.4\nthe same document\n")} {
					a, err := e.files.Upload(ctx, alice, "a", bytes.NewReader(data))
					if err != nil {
						t.Fatal(err)
					}
					b, err := e.files.Upload(ctx, bob, "b", bytes.NewReader(data))
					if err != nil {
						t.Fatal(err)
					}
					if a.ID == b.ID || a.SHA256 != b.SHA256 || a.OwnerID == b.OwnerID || a.Name == b.Name {
						t.Fatalf("two uploads: %+v and %+v", a, b)
					}
					ra, _ := e.files.st.get(ctx, a.ID)
					rb, _ := e.files.st.get(ctx, b.ID)
					if ra.StorageKey != rb.StorageKey {
						t.Fatalf("identical content stored twice: %s and %s", ra.StorageKey, rb.StorageKey)
					}
					if err := e.files.Delete(ctx, alice, a.ID); err != nil {
						t.Fatal(err)
					}
					if _, err := e.blobs.Stat(ctx, rb.StorageKey); err != nil {
						t.Fatalf("deleting one of two files removed the shared content: %v", err)
					}
					if err := e.files.Delete(ctx, bob, b.ID); err != nil {
						t.Fatal(err)
					}
					for _, k := range rb.content.keys() {
						if _, err := e.blobs.Stat(ctx, k); !errors.Is(err, ErrBlobNotFound) {
							t.Errorf("after the last file: %s is %v, want gone", k, err)
						}
					}
				}
				if n := e.count(t, "media_blobs"); n != 0 {
					t.Errorf("%d contents left, want 0", n)
				}
			})
		})
	}
}

// countingBlobs counts the objects written: an image upload that was processed writes two (the
// re-encoded image and its thumbnail), one that reused stored content writes none.
type countingBlobs struct {
	BlobStore
	puts atomic.Int64
}

func (c *countingBlobs) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	c.puts.Add(1)
	return c.BlobStore.Put(ctx, key, r)
}

// TestDedupDoesNotRevealOtherUsersFiles: skipping the image processing for bytes that someone
// else uploaded would make that upload measurably faster and so tell the uploader that someone
// holds the image. Only the uploader's own earlier upload may be reused; another user's upload of
// the same bytes is processed in full (and then shares the stored content).
func TestDedupDoesNotRevealOtherUsersFiles(t *testing.T) {
	t.Parallel()
	for name, open := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				t.Parallel()
				blobs := &countingBlobs{BlobStore: open(t)}
				e := newFilesEnv(t, db, blobs, nil)
				alice, bob := createUser(t, db), createUser(t, db)
				ctx := context.Background()
				data := encodeJPEG(t, quadrants(96, 64))
				steps := []struct {
					name      string
					owner     string
					wantPuts  int64
					wantFiles int
				}{
					{"first upload", alice, 2, 1},
					{"the same user again", alice, 0, 2},
					{"another user", bob, 2, 3},
					{"that user again", bob, 0, 4},
				}
				var key string
				for _, s := range steps {
					before := blobs.puts.Load()
					f, err := e.files.Upload(ctx, s.owner, "x.jpg", bytes.NewReader(data))
					if err != nil {
						t.Fatalf("%s: %v", s.name, err)
					}
					if got := blobs.puts.Load() - before; got != s.wantPuts {
						t.Errorf("%s: %d objects written, want %d", s.name, got, s.wantPuts)
					}
					if f.OwnerID != s.owner {
						t.Errorf("%s: owner %s, want %s", s.name, f.OwnerID, s.owner)
					}
					row, err := e.files.st.get(ctx, f.ID)
					if err != nil {
						t.Fatal(err)
					}
					if key == "" {
						key = row.StorageKey
					} else if row.StorageKey != key {
						t.Errorf("%s: stored apart (%s, want %s): identical content is still stored once", s.name, row.StorageKey, key)
					}
					if n := e.count(t, "files"); n != s.wantFiles {
						t.Errorf("%s: %d files, want %d", s.name, n, s.wantFiles)
					}
				}
				if n := e.count(t, "media_blobs"); n != 1 {
					t.Errorf("%d contents, want 1", n)
				}
				if e.root != "" {
					if got := len(e.objects(t)); got != 2 {
						t.Errorf("%d objects stored, want 2 (the second user's copies must be deleted)", got)
					}
				}
			})
		})
	}
}

func TestConcurrentUploadsOfTheSameContent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := diskEnv(t, db, nil)
		owner := createUser(t, db)
		ctx := context.Background()
		for _, data := range [][]byte{encodeJPEG(t, quadrants(120, 80)), pad([]byte("%PDF-1.4\n"), 20_000)} {
			var wg sync.WaitGroup
			ids := make(chan string, 8)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f, err := e.files.Upload(ctx, owner, "same", bytes.NewReader(data))
					if err != nil {
						t.Error(err)
						return
					}
					ids <- f.ID
				}()
			}
			wg.Wait()
			close(ids)
			// Deleting while uploading the same content again must keep every file whole.
			for id := range ids {
				wg.Add(2)
				go func() { defer wg.Done(); _ = e.files.Delete(ctx, owner, id) }()
				go func() {
					defer wg.Done()
					f, err := e.files.Upload(ctx, owner, "again", bytes.NewReader(data))
					if err != nil {
						t.Error(err)
						return
					}
					row, err := e.files.st.get(ctx, f.ID)
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := e.blobs.Stat(ctx, row.StorageKey); err != nil {
						t.Errorf("a new file points at deleted content: %v", err)
					}
				}()
			}
			wg.Wait()
		}
		var contents, files int
		db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM media_blobs`).Scan(&contents)
		db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM files`).Scan(&files)
		if contents != 2 || files != 16 {
			t.Errorf("%d contents and %d files, want 2 and 16", contents, files)
		}
		// Exactly the objects of the two contents are stored: image + thumbnail, document.
		if got := len(e.objects(t)); got != 3 {
			t.Errorf("%d objects stored, want 3 (duplicates must be removed)", got)
		}
	})
}

func TestOrphansAttachAndRelease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := diskEnv(t, db, nil)
		owner := createUser(t, db)
		ctx := context.Background()
		upload := func(text string) File {
			f, err := e.files.Upload(ctx, owner, "n.txt", strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		orphan, attached, released, fresh := upload("orphan"), upload("attached"), upload("released"), File{}
		for _, id := range []string{attached.ID, released.ID, released.ID} {
			if err := e.files.Attach(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.advance(25 * time.Hour)
		fresh = upload("fresh")
		if err := e.files.Delete(ctx, owner, attached.ID); !isCode(err, "file_in_use") {
			t.Errorf("delete an attached file: %v, want file_in_use", err)
		}
		n, err := e.files.CleanupOrphans(ctx, 24*time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("CleanupOrphans = %d, %v; want 1", n, err)
		}
		for id, want := range map[string]bool{orphan.ID: false, attached.ID: true, released.ID: true, fresh.ID: true} {
			if _, err := e.files.Get(ctx, id); (err == nil) != want {
				t.Errorf("file %s exists = %v, want %v", id, err == nil, want)
			}
		}
		// Two attachments: the first release keeps the file, the second deletes it.
		if err := e.files.Release(ctx, released.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.files.Get(ctx, released.ID); err != nil {
			t.Fatalf("released once of twice: %v", err)
		}
		if err := e.files.Release(ctx, released.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.files.Get(ctx, released.ID); !isCode(err, "not_found") {
			t.Fatalf("released twice: %v, want not_found", err)
		}
		for _, err := range []error{e.files.Release(ctx, released.ID), e.files.Attach(ctx, released.ID),
			e.files.Release(ctx, fresh.ID), e.files.Attach(ctx, "not-a-uuid")} {
			if !isCode(err, "not_found") {
				t.Errorf("got %v, want not_found", err)
			}
		}
		if got := len(e.objects(t)); got != 2 {
			t.Errorf("%d objects, want 2 (attached and fresh)", got)
		}
	})
}

func isCode(err error, code string) bool {
	ae, ok := apperr.As(err)
	return ok && ae.Code == code
}

func TestContentOfDeletedAccountsIsSwept(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := diskEnv(t, db, nil)
		owner, other := createUser(t, db), createUser(t, db)
		ctx := context.Background()
		if _, err := e.files.Upload(ctx, owner, "a.txt", strings.NewReader("mine only")); err != nil {
			t.Fatal(err)
		}
		f, err := e.files.Upload(ctx, owner, "b.txt", strings.NewReader("shared"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.files.Upload(ctx, other, "c.txt", strings.NewReader("shared")); err != nil {
			t.Fatal(err)
		}
		if err := e.files.Attach(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, owner); err != nil {
			t.Fatal(err)
		}
		if _, err := e.files.CleanupOrphans(ctx, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, "media_blobs"); n != 1 {
			t.Errorf("%d contents, want 1 (the shared one)", n)
		}
		if got := len(e.objects(t)); got != 1 {
			t.Errorf("%d objects, want 1", got)
		}
	})
}

// fakeAccess grants reading to the users in allow, or fails.
type fakeAccess struct {
	allow map[string]bool
	err   error
}

func (a fakeAccess) CanRead(_ context.Context, userID, _ string) (bool, error) {
	return a.allow[userID], a.err
}

func TestReadAccess(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	e := diskEnv(t, db, nil)
	owner, member, stranger := createUser(t, db), createUser(t, db), createUser(t, db)
	ctx := context.Background()
	f, err := e.files.Upload(ctx, owner, "n.txt", strings.NewReader("private"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(user string, want error) {
		t.Helper()
		_, err := e.files.readable(ctx, user, f.ID)
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Errorf("readable by %s: %v, want %v", user, err, want)
		}
	}
	check(owner, nil)
	check(member, errFileNotFound) // owner only until Access is set
	e.files.access = fakeAccess{allow: map[string]bool{member: true}}
	check(owner, nil)
	check(member, nil)
	check(stranger, errFileNotFound)
	if err := e.files.Delete(ctx, member, f.ID); !isCode(err, "forbidden") {
		t.Errorf("delete by a reader: %v, want forbidden", err)
	}
	if err := e.files.Delete(ctx, stranger, f.ID); !isCode(err, "not_found") {
		t.Errorf("delete by a stranger: %v, want not_found", err)
	}
	boom := errors.New("chat store down")
	e.files.access = fakeAccess{err: boom}
	check(stranger, boom)
	if _, err := e.files.readable(ctx, owner, "../etc/passwd"); !errors.Is(err, errFileNotFound) {
		t.Errorf("malformed id: %v", err)
	}
}

func TestSanitizeName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 150) + ".pdf"
	tests := []struct{ in, mime, want string }{
		{"report.pdf", "application/pdf", "report.pdf"},
		{"../../etc/passwd", "text/plain", "passwd.txt"},
		{`C:\Users\x\secret.docx`, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "secret.docx"},
		{"photo.PNG", mimePNG, "photo.PNG"},
		{"photo.jpeg", mimeJPEG, "photo.jpeg"},
		{"photo.webp", mimeJPEG, "photo.jpg"},
		{"invoice.pdf.exe", "application/pdf", "invoice.pdf.pdf"},
		{"evil\u202etxt.exe", "text/plain", "evil_txt.txt"},
		{"a\"b\r\nc.txt", "text/plain", "a_b__c.txt"},
		{"", mimePNG, "file.png"},
		{"...", "text/plain", "file.txt"},
		{" .hidden ", "text/plain", "hidden.txt"},
		{"x\xffy.txt", "text/plain", "x_y.txt"},
		{long, "application/pdf", strings.Repeat("é", 98) + ".pdf"},
	}
	for _, tt := range tests {
		if got := sanitizeName(tt.in, tt.mime); got != tt.want {
			t.Errorf("sanitizeName(%q, %s) = %q, want %q", tt.in, tt.mime, got, tt.want)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ kind, name, want string }{
		{KindImage, "a.jpg", `inline; filename=a.jpg`},
		{KindFile, "report 1.pdf", `attachment; filename="report 1.pdf"`},
		{KindFile, "résumé.pdf", `attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf`},
		{KindAudio, "v.ogg", `inline; filename=v.ogg`},
	} {
		if got := contentDisposition(tt.kind, tt.name); got != tt.want {
			t.Errorf("contentDisposition(%s, %q) = %q, want %q", tt.kind, tt.name, got, tt.want)
		}
	}
}

func TestStartCleanupSweepsAndStops(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	e := diskEnv(t, db, nil)
	owner := createUser(t, db)
	ctx := context.Background()
	f, err := e.files.Upload(ctx, owner, "old.txt", strings.NewReader("forgotten"))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(48 * time.Hour)
	stop := e.files.StartCleanup(5*time.Millisecond, 24*time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.files.Get(ctx, f.ID); isCode(err, "not_found") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the orphan was not swept")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stop(sctx)
	if sctx.Err() != nil {
		t.Fatal("stop did not return")
	}
}

// FuzzSanitizeName: whatever a client sends as a file name, the stored name is one valid UTF-8
// path element of bounded length, without control, format or quoting characters, with the
// stored type's extension.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"report.pdf", "../../etc/passwd", `C:\x\y.docx`, "evil\u202etxt.exe", "a\"b\r\n.txt", "", "\xff\xfe", strings.Repeat("é", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, typ := range []string{mimeJPEG, "application/pdf", "text/plain"} {
			got := sanitizeName(name, typ)
			if !utf8.ValidString(got) || len(got) > maxNameBytes || got == "" {
				t.Fatalf("sanitizeName(%q) = %q: invalid or too long", name, got)
			}
			if strings.ContainsAny(got, "/\\\"\x00\r\n") || got[0] == '.' || got[0] == ' ' {
				t.Fatalf("sanitizeName(%q) = %q: unsafe characters", name, got)
			}
			for _, r := range got {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Fatalf("sanitizeName(%q) = %q: control or format character %U", name, got, r)
				}
			}
			if ext := extensions[typ]; !strings.HasSuffix(strings.ToLower(got), ext) && !(ext == ".jpg" && strings.HasSuffix(strings.ToLower(got), ".jpeg")) {
				t.Fatalf("sanitizeName(%q, %s) = %q: wrong extension", name, typ, got)
			}
		}
	})
}

// attachCount reads a file's attach_count.
func (e *filesEnv) attachCount(t *testing.T, id string) int {
	t.Helper()
	var n int
	if err := e.db.R.QueryRowContext(context.Background(), `SELECT attach_count FROM files WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAttachTx(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := diskEnv(t, db, nil)
		owner, other := createUser(t, db), createUser(t, db)
		ctx := context.Background()
		upload := func(user, text string) string {
			f, err := e.files.Upload(ctx, user, "n.txt", strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			return f.ID
		}
		a, b, theirs := upload(owner, "a"), upload(owner, "b"), upload(other, "c")
		attach := func(ids ...string) bool {
			t.Helper()
			var ok bool
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				ok, err = e.files.AttachTx(ctx, tx, owner, ids)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		tests := []struct {
			name string
			ids  []string
			ok   bool
		}{
			{"someone else's", []string{a, theirs}, false},
			{"unknown", []string{b, uuid.Must(uuid.NewV7()).String()}, false},
			{"not an id", []string{"x"}, false},
			{"none", nil, true},
			{"own files", []string{b, a}, true},
		}
		for _, tc := range tests { // in order: the counts add up
			if got := attach(tc.ids...); got != tc.ok {
				t.Errorf("%s: ok = %v, want %v", tc.name, got, tc.ok)
			}
		}
		for id, want := range map[string]int{a: 1, b: 1, theirs: 0} {
			if got := e.attachCount(t, id); got != want {
				t.Errorf("attach_count of %s = %d, want %d", id, got, want)
			}
		}
		// Attached: never an orphan, not deletable by its owner until released.
		e.clock.advance(25 * time.Hour)
		if n, err := e.files.CleanupOrphans(ctx, 24*time.Hour); err != nil || n != 1 {
			t.Fatalf("CleanupOrphans = %d, %v; want 1 (theirs)", n, err)
		}
		if err := e.files.Delete(ctx, owner, a); !isCode(err, "file_in_use") {
			t.Errorf("delete attached: %v", err)
		}
		if err := e.files.Release(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := e.files.Get(ctx, a); !isCode(err, "not_found") {
			t.Errorf("after the last release: %v, want not_found", err)
		}
		if url, thumb := FileURL(b, false); url != "/api/v1/files/"+b || thumb != "" {
			t.Errorf("FileURL = %q %q", url, thumb)
		}
	})
}
