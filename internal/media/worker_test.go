package media

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// The test binary is the worker in these tests: this package's init runs the job when
// NERUTALK_IMAGE_WORKER=1, before the tests would.

// largeImage is a PNG and a JPEG that cost more than the fast lane, so process mode sends them to
// a worker.
func largeImages(t testing.TB) map[string][]byte {
	t.Helper()
	img := quadrants(1800, 1200)
	return map[string][]byte{"png": encodePNG(t, img), "jpeg": encodeJPEG(t, img)}
}

func testPool(t testing.TB, timeout time.Duration) *workerPool {
	t.Helper()
	wp := newWorkerPool(WorkersProcess, timeout, nil)
	if wp == nil {
		t.Fatal("no worker pool in process mode")
	}
	return wp
}

// TestWorkerMatchesInline: a large image processed by a worker gives exactly what inline
// processing gives, for both jobs.
func TestWorkerMatchesInline(t *testing.T) {
	t.Parallel()
	inline := newPipelineWorkers(1<<30, 0, nil)
	process := newPipelineWorkers(1<<30, 0, testPool(t, 0))
	for name, data := range largeImages(t) {
		in, err := inline.inspect(data, true)
		if err != nil {
			t.Fatal(err)
		}
		if in.cost <= fastLaneCost {
			t.Fatalf("%s: cost %d is in the fast lane: the test would not use a worker", name, in.cost)
		}
		for _, op := range []byte{opFile, opAvatar} {
			want, err := inline.process(context.Background(), op, data)
			if err != nil {
				t.Fatalf("%s op %d inline: %v", name, op, err)
			}
			got, err := process.process(context.Background(), op, data)
			if err != nil {
				t.Fatalf("%s op %d worker: %v", name, op, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s op %d: %d parts, want %d", name, op, len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.mime != w.mime || g.width != w.width || g.height != w.height || !bytes.Equal(g.data, w.data) {
					t.Errorf("%s op %d part %d: worker gave %s %dx%d (%d bytes), inline %s %dx%d (%d bytes)",
						name, op, i, g.mime, g.width, g.height, len(g.data), w.mime, w.width, w.height, len(w.data))
				}
			}
		}
	}
}

// TestWorkerReportsTheImagesFault: an image whose header passes but whose data is corrupt fails
// in the worker with the same 422 invalid_image as inline.
func TestWorkerReportsTheImagesFault(t *testing.T) {
	t.Parallel()
	data := pngHeader(3000, 3000) // a valid header, an empty image stream
	for name, p := range map[string]*pipeline{
		"inline": newPipelineWorkers(1<<30, 0, nil), "process": newPipelineWorkers(1<<30, 0, testPool(t, 0)),
	} {
		_, err := p.process(context.Background(), opFile, data)
		wantErrCode(t, err, apperr.KindInvalid, "invalid_image")
		if name == "process" && err != nil && strings.Contains(err.Error(), "image_processing_failed") {
			t.Errorf("the image's fault was reported as a worker failure: %v", err)
		}
	}
}

// shellPool is a pool whose "worker" is a shell script, for the failures a real worker should
// never have.
func shellPool(t *testing.T, script string, timeout time.Duration) *workerPool {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "worker.sh")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho run >> "+filepath.Join(dir, "runs")+"\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	wp := testPool(t, timeout)
	wp.exe = exe
	return wp
}

func runs(t *testing.T, wp *workerPool) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(wp.exe), "runs"))
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "run")
}

// TestWorkerFailures: a worker that crashes or writes garbage is retried once, then the upload
// fails with 503 image_processing_failed; one that hangs is killed at the timeout (503
// image_processing_timeout, no retry).
func TestWorkerFailures(t *testing.T) {
	t.Parallel()
	data := largeImages(t)["jpeg"]
	for _, tt := range []struct {
		name, script string
		timeout      time.Duration
		code         string
		runs         int
	}{
		{"crash", "cat >/dev/null; echo 'fatal error: out of memory' >&2; exit 2", 0, "image_processing_failed", 2},
		{"garbage", "cat >/dev/null; printf 'NTIR\\001\\000\\002garbage'", 0, "image_processing_failed", 2},
		{"nothing", "exit 0", 0, "image_processing_failed", 2},
		{"hang", "exec sleep 60", 300 * time.Millisecond, "image_processing_timeout", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wp := shellPool(t, tt.script, tt.timeout)
			p := newPipelineWorkers(1<<30, 0, wp)
			start := time.Now()
			_, err := p.process(context.Background(), opFile, data)
			wantErrCode(t, err, apperr.KindUnavailable, tt.code)
			var ae *apperr.Error
			if errors.As(err, &ae) && ae.RetryAfter <= 0 {
				t.Errorf("no Retry-After: %+v", ae)
			}
			if n := runs(t, wp); n != tt.runs {
				t.Errorf("the worker ran %d times, want %d", n, tt.runs)
			}
			if tt.timeout > 0 && time.Since(start) > 30*time.Second {
				t.Errorf("the timeout took %v", time.Since(start))
			}
		})
	}
}

// TestWorkerCancelled: a client that goes away kills its worker, without a retry.
func TestWorkerCancelled(t *testing.T) {
	t.Parallel()
	wp := shellPool(t, "exec sleep 60", time.Minute)
	data := largeImages(t)["jpeg"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := newPipelineWorkers(1<<30, 0, wp).process(ctx, opFile, data)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
	if n := runs(t, wp); n != 1 {
		t.Errorf("the worker ran %d times, want 1", n)
	}
}

// TestRunWorker runs a worker's main in this process: a job in, a result out; a bad job is exit
// status 2 without a result.
func TestRunWorker(t *testing.T) {
	t.Parallel()
	data := encodePNG(t, quadrants(40, 30))
	var in, out, errOut bytes.Buffer
	in.Write(encodeJobHeader(opFile, 1<<20, len(data)))
	in.Write(data)
	if code := runWorker(&in, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	parts, err := parseResult(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].mime != mimePNG || parts[0].width != 40 || parts[0].height != 30 || parts[1].width != 40 {
		t.Errorf("parts = %s %dx%d, %s %dx%d", parts[0].mime, parts[0].width, parts[0].height, parts[1].mime, parts[1].width, parts[1].height)
	}

	out.Reset()
	if code := runWorker(strings.NewReader("NTIJ\x01\x09"), &out, &errOut); code != 2 || out.Len() != 0 {
		t.Errorf("a bad job: exit %d, %d bytes out", code, out.Len())
	}
}

// TestResultRoundTrip: what the worker writes, the server reads back.
func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	parts := []encodedImage{{mime: mimeJPEG, data: []byte("full"), width: 3, height: 2}, {mime: mimePNG, data: []byte("t"), width: 1, height: 1}}
	var b bytes.Buffer
	if err := encodeResult(&b, parts...); err != nil {
		t.Fatal(err)
	}
	got, err := parseResult(b.Bytes())
	if err != nil || len(got) != 2 || got[0].mime != mimeJPEG || string(got[0].data) != "full" || got[1].width != 1 {
		t.Fatalf("parseResult = %+v, %v", got, err)
	}
	b.Reset()
	if err := encodeError(&b, imageTooLarge(10)); err != nil {
		t.Fatal(err)
	}
	_, err = parseResult(b.Bytes())
	wantErrCode(t, err, apperr.KindInvalid, "image_too_large")
	for _, bad := range [][]byte{nil, []byte("NTIR"), append(b.Bytes(), 0), b.Bytes()[:len(b.Bytes())-1]} {
		if _, err := parseResult(bad); !errors.Is(err, errBadResult) {
			t.Errorf("parseResult(%q) = %v, want errBadResult", bad, err)
		}
	}
}

// FuzzParseResult: the server reads whatever a worker writes without panicking, and what it
// accepts is exactly what encodeResult or encodeError would have written.
func FuzzParseResult(f *testing.F) {
	var ok, bad bytes.Buffer
	_ = encodeResult(&ok, encodedImage{mime: mimeJPEG, data: []byte{1, 2, 3}, width: 3, height: 2},
		encodedImage{mime: mimePNG, data: []byte{4}, width: 1, height: 1})
	_ = encodeError(&bad, invalidImage(errors.New("x")))
	f.Add(ok.Bytes())
	f.Add(bad.Bytes())
	f.Add([]byte("NTIR\x01\x00\x02\x0aimage/jpeg\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := parseResult(b)
		var again bytes.Buffer
		var ae *apperr.Error
		switch {
		case err == nil:
			if len(parts) != 2 {
				t.Fatalf("%d parts", len(parts))
			}
			_ = encodeResult(&again, parts...)
		case errors.As(err, &ae):
			_ = encodeError(&again, ae)
		default:
			return
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("accepted %q, which encodes as %q", b, again.Bytes())
		}
	})
}
