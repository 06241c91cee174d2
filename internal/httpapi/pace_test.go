package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPacedReader(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, uploadPaceBytes - 1, uploadPaceBytes, uploadPaceBytes + 1, 5*uploadPaceBytes + 17} {
		src := bytes.Repeat([]byte{0xab}, size)
		var pauses []time.Duration
		p := newPacedReader(bytes.NewReader(src))
		p.sleep = func(d time.Duration) { pauses = append(pauses, d) }
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("size %d: read %d bytes, err %v", size, len(got), err)
		}
		// One pause before every chunk after the first, none before the first or after the last.
		want := 0
		if size > 0 {
			want = (size - 1) / uploadPaceBytes
		}
		if len(pauses) != want {
			t.Errorf("size %d: %d pauses, want %d", size, len(pauses), want)
		}
		for _, d := range pauses {
			if d < uploadPauseMin || d > uploadPauseMax {
				t.Errorf("size %d: pause %v outside [%v, %v]", size, d, uploadPauseMin, uploadPauseMax)
			}
		}
	}
}

// TestPacedReaderChunks checks that no read crosses a chunk boundary, whatever the buffer size.
func TestPacedReaderChunks(t *testing.T) {
	t.Parallel()
	p := newPacedReader(bytes.NewReader(make([]byte, 3*uploadPaceBytes)))
	pauses := 0
	p.sleep = func(time.Duration) { pauses++ }
	buf := make([]byte, uploadPaceBytes+1000)
	total := 0
	for {
		n, err := p.Read(buf)
		if n > 0 && total/uploadPaceBytes != (total+n-1)/uploadPaceBytes {
			t.Fatalf("the read of bytes %d to %d crossed a chunk boundary", total, total+n)
		}
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != 3*uploadPaceBytes || pauses != 2 {
		t.Fatalf("read %d bytes with %d pauses", total, pauses)
	}
}

// TestPaceBodies: the router reads through a pacedReader exactly the bodies that may be longer
// than one chunk (a larger declared length, or none), and hands the handler every byte.
func TestPaceBodies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		body   io.Reader
		length int64 // -1: unknown (chunked)
		paced  bool
	}{
		{"no body", http.NoBody, 0, false},
		{"small JSON", bytes.NewReader([]byte(`{"text":"hi"}`)), 13, false},
		{"exactly one chunk", bytes.NewReader(make([]byte, uploadPaceBytes)), uploadPaceBytes, false},
		{"an upload", bytes.NewReader(make([]byte, 3*uploadPaceBytes)), 3 * uploadPaceBytes, true},
		{"chunked, length unknown", bytes.NewReader(make([]byte, 10)), -1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/api/v1/files", c.body)
			r.ContentLength = c.length
			var paced bool
			var got int
			paceBodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, paced = r.Body.(pacedBody)
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("read: %v", err)
				}
				got = len(b)
				if err := r.Body.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})).ServeHTTP(httptest.NewRecorder(), r)
			if paced != c.paced {
				t.Errorf("paced %v, want %v", paced, c.paced)
			}
			if c.length >= 0 && int64(got) != c.length {
				t.Errorf("handler read %d bytes, want %d", got, c.length)
			}
		})
	}
}
