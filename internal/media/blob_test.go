package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// blobStores returns every BlobStore implementation, each fresh: the disk store in a temporary
// folder and, when NERUTALK_TEST_S3_URL is set, the S3 store on that server.
func blobStores(t *testing.T) map[string]func(t *testing.T) BlobStore {
	return map[string]func(t *testing.T) BlobStore{
		"disk": func(t *testing.T) BlobStore {
			d, err := NewDiskStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		"s3": func(t *testing.T) BlobStore { return testS3Store(t) },
	}
}

// testS3Config reads NERUTALK_TEST_S3_URL (http://ACCESS:SECRET@host:port/bucket, see
// scripts/s3-test-server.sh). Without it the test is skipped, or fails when CI=true.
func testS3Config(t testing.TB) S3Config {
	t.Helper()
	raw := os.Getenv("NERUTALK_TEST_S3_URL")
	if raw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("NERUTALK_TEST_S3_URL is not set; CI must run the S3 tests (scripts/s3-test-server.sh starts a server)")
		}
		t.Skip("S3 tests skipped: run `eval \"$(scripts/s3-test-server.sh)\"` to set NERUTALK_TEST_S3_URL")
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || strings.Trim(u.Path, "/") == "" {
		t.Fatalf("NERUTALK_TEST_S3_URL=%q: want http://ACCESS:SECRET@host:port/bucket", raw)
	}
	secret, _ := u.User.Password()
	return S3Config{
		Endpoint: u.Scheme + "://" + u.Host, Region: "us-east-1", Bucket: strings.Trim(u.Path, "/"),
		AccessKey: u.User.Username(), SecretKey: secret, PathStyle: true,
	}
}

var bucketOnce sync.Map // bucket name -> *sync.Once

func testS3Store(t testing.TB) *S3Store {
	t.Helper()
	cfg := testS3Config(t)
	s, err := NewS3Store(cfg)
	if err != nil {
		t.Fatal(err)
	}
	once, _ := bucketOnce.LoadOrStore(cfg.Bucket, new(sync.Once))
	once.(*sync.Once).Do(func() {
		ctx := context.Background()
		if s.Ping(ctx) == nil {
			return
		}
		if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &cfg.Bucket}); err != nil {
			t.Fatalf("create bucket %s: %v", cfg.Bucket, err)
		}
	})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("S3 server at NERUTALK_TEST_S3_URL unreachable: %v", err)
	}
	return s
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func getBytes(t *testing.T, st BlobStore, key string, off, n int64) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

// failingReader yields n bytes of data, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestBlobStores(t *testing.T) {
	t.Parallel()
	for name, open := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			ctx := context.Background()

			t.Run("round trip and ranges", func(t *testing.T) {
				t.Parallel()
				for _, size := range []int{0, 1, 1000, s3PartSize + 12345} {
					data := randomBytes(t, size)
					key := blobKey("test", newBlobID(), "")
					n, err := st.Put(ctx, key, bytes.NewReader(data))
					if err != nil || n != int64(size) {
						t.Fatalf("put %d bytes: n=%d err=%v", size, n, err)
					}
					info, err := st.Stat(ctx, key)
					if err != nil || info.Size != int64(size) {
						t.Fatalf("stat: got %+v, %v; want size %d", info, err, size)
					}
					if info.ModTime.IsZero() || time.Since(info.ModTime) > time.Hour {
						t.Errorf("stat: mod time %v, want about now", info.ModTime)
					}
					if got := getBytes(t, st, key, 0, -1); !bytes.Equal(got, data) {
						t.Fatalf("get whole %d bytes: got %d bytes, not equal", size, len(got))
					}
					ranges := []struct{ off, n int64 }{{0, 0}, {int64(size), -1}, {int64(size), 5}}
					if size > 10 {
						ranges = append(ranges, []struct{ off, n int64 }{{3, 4}, {int64(size) - 2, -1}, {int64(size) - 2, 100}, {0, 1}}...)
					}
					for _, r := range ranges {
						end := int64(size)
						if r.n >= 0 && r.off+r.n < end {
							end = r.off + r.n
						}
						got := getBytes(t, st, key, r.off, r.n)
						if want := data[r.off:end]; !bytes.Equal(got, want) {
							t.Errorf("get(%d, %d) of %d bytes: got %d bytes, want %d", r.off, r.n, size, len(got), len(want))
						}
					}
					if _, err := st.Get(ctx, key, int64(size)+1, -1); !errors.Is(err, ErrInvalidRange) {
						t.Errorf("get beyond the end: got %v, want ErrInvalidRange", err)
					}
				}
			})

			t.Run("overwrite, delete and missing", func(t *testing.T) {
				t.Parallel()
				key := blobKey("test", newBlobID(), "thumb")
				for _, v := range []string{"first version", "second"} {
					if _, err := st.Put(ctx, key, strings.NewReader(v)); err != nil {
						t.Fatal(err)
					}
				}
				if got := string(getBytes(t, st, key, 0, -1)); got != "second" {
					t.Fatalf("after overwrite: got %q, want %q", got, "second")
				}
				if err := st.Delete(ctx, key); err != nil {
					t.Fatalf("delete: %v", err)
				}
				if err := st.Delete(ctx, key); err != nil {
					t.Fatalf("delete again: %v", err)
				}
				if _, err := st.Stat(ctx, key); !errors.Is(err, ErrBlobNotFound) {
					t.Errorf("stat deleted: got %v, want ErrBlobNotFound", err)
				}
				if _, err := st.Get(ctx, key, 0, -1); !errors.Is(err, ErrBlobNotFound) {
					t.Errorf("get deleted: got %v, want ErrBlobNotFound", err)
				}
				if _, err := st.Get(ctx, key, 0, 0); !errors.Is(err, ErrBlobNotFound) {
					t.Errorf("get 0 bytes of deleted: got %v, want ErrBlobNotFound", err)
				}
			})

			t.Run("invalid keys", func(t *testing.T) {
				t.Parallel()
				for _, key := range []string{"", "../etc/passwd", "test/../../0123456789abcdef", "TEST/0123456789abcdef",
					"test/0123456789abcde", "test/0123456789abcdef/x", "test/0123456789abcdef.", "test/0123456789ABCDEF",
					"/test/0123456789abcdef", "test/0123456789abcdef.a/b", "test/0123456789abcdef\x00"} {
					if _, err := st.Put(ctx, key, strings.NewReader("x")); !errors.Is(err, ErrInvalidKey) {
						t.Errorf("put %q: got %v, want ErrInvalidKey", key, err)
					}
					if _, err := st.Get(ctx, key, 0, -1); !errors.Is(err, ErrInvalidKey) {
						t.Errorf("get %q: got %v, want ErrInvalidKey", key, err)
					}
					if _, err := st.Stat(ctx, key); !errors.Is(err, ErrInvalidKey) {
						t.Errorf("stat %q: got %v, want ErrInvalidKey", key, err)
					}
					if err := st.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
						t.Errorf("delete %q: got %v, want ErrInvalidKey", key, err)
					}
					if _, err := st.Presign(ctx, key, time.Minute); !errors.Is(err, ErrInvalidKey) {
						t.Errorf("presign %q: got %v, want ErrInvalidKey", key, err)
					}
				}
			})

			t.Run("failed writes leave nothing", func(t *testing.T) {
				t.Parallel()
				st := open(t) // alone, so that other subtests' writes in flight are not mistaken for leftovers
				boom := errors.New("client went away")
				for _, size := range []int{10, s3PartSize + 10} {
					key := blobKey("fail", newBlobID(), "")
					_, err := st.Put(ctx, key, &failingReader{data: randomBytes(t, size), err: boom})
					if !errors.Is(err, boom) {
						t.Fatalf("put failing after %d bytes: got %v, want the reader's error", size, err)
					}
					if _, err := st.Stat(ctx, key); !errors.Is(err, ErrBlobNotFound) {
						t.Errorf("after a failed put of %d bytes: stat = %v, want ErrBlobNotFound", size, err)
					}
				}
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				key := blobKey("fail", newBlobID(), "")
				if _, err := st.Put(cctx, key, bytes.NewReader(randomBytes(t, 100))); err == nil {
					t.Errorf("put with a cancelled context succeeded")
				}
				if _, err := st.Stat(ctx, key); !errors.Is(err, ErrBlobNotFound) {
					t.Errorf("after a cancelled put: stat = %v, want ErrBlobNotFound", err)
				}
				assertNoLeftovers(t, st)
			})

			t.Run("concurrent puts", func(t *testing.T) {
				t.Parallel()
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for i := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						key := blobKey("test", newBlobID(), "")
						want := fmt.Sprintf("object %d", i)
						if _, err := st.Put(ctx, key, strings.NewReader(want)); err != nil {
							errs <- err
							return
						}
						rc, err := st.Get(ctx, key, 0, -1)
						if err != nil {
							errs <- err
							return
						}
						defer rc.Close()
						if got, _ := io.ReadAll(rc); string(got) != want {
							errs <- fmt.Errorf("got %q, want %q", got, want)
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})

			t.Run("presign", func(t *testing.T) {
				t.Parallel()
				key := blobKey("test", newBlobID(), "")
				if _, err := st.Put(ctx, key, strings.NewReader("presigned content")); err != nil {
					t.Fatal(err)
				}
				u, err := st.Presign(ctx, key, time.Minute)
				if name == "disk" {
					if !errors.Is(err, ErrPresignUnsupported) {
						t.Fatalf("disk presign: got %q, %v; want ErrPresignUnsupported", u, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("presign: %v", err)
				}
				status, body := httpGet(t, u)
				if status != http.StatusOK || body != "presigned content" {
					t.Fatalf("GET presigned URL: %d %q", status, body)
				}
				// The server checks the signature: a tampered one is refused.
				pu, _ := url.Parse(u)
				q := pu.Query()
				sig := []byte(q.Get("X-Amz-Signature"))
				sig[0] ^= 1
				if sig[0] > 'f' || sig[0] < '0' {
					sig[0] = '0'
				}
				q.Set("X-Amz-Signature", string(sig))
				pu.RawQuery = q.Encode()
				if status, _ := httpGet(t, pu.String()); status != http.StatusForbidden {
					t.Errorf("GET with a tampered signature: status %d, want 403", status)
				}
			})
		})
	}
}

// assertNoLeftovers checks that failed writes left no temporary file (disk) or unfinished
// multipart upload (S3).
func assertNoLeftovers(t *testing.T, st BlobStore) {
	t.Helper()
	switch s := st.(type) {
	case *DiskStore:
		entries, err := os.ReadDir(s.tmp)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	case *S3Store:
		out, err := s.client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &s.bucket})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Uploads {
			if strings.HasPrefix(*u.Key, "fail/") {
				t.Errorf("multipart upload left behind: %s", *u.Key)
			}
		}
	}
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestS3RefusesAWrongSecret(t *testing.T) {
	t.Parallel()
	cfg := testS3Config(t)
	testS3Store(t) // the bucket exists
	cfg.SecretKey += "-wrong"
	s, err := NewS3Store(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := blobKey("test", newBlobID(), "")
	if _, err := s.Put(context.Background(), key, strings.NewReader("x")); err == nil {
		t.Fatal("put signed with a wrong secret succeeded; the S3 server does not check signatures")
	}
}
