package media

import (
	"bytes"
	"io"
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
