package media

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/cpuprio"
)

// Large images are processed in worker processes (NERUTALK_IMAGE_WORKERS=process, the default):
// a decode of tens of megapixels takes a core for seconds and allocates hundreds of megabytes,
// and Go has no goroutine priorities, so in the server it delays every message on the node and
// its garbage collections stall the rest of the heap. A worker is the server's own binary
// (os.Executable) started with NERUTALK_IMAGE_WORKER=1: this package's init sees the variable,
// runs one job and exits, before main (or a test binary's TestMain) runs. The worker lowers its
// own CPU priority (SCHED_IDLE at nice 19 on Linux, internal/cpuprio; in a session and so an
// autogroup of its own, niced to 19: worker_linux.go), caps its memory (debug.SetMemoryLimit and
// RLIMIT_DATA on Linux) and GOMAXPROCS=1, reads one job on stdin and writes one result on stdout
// (workerproto.go).
// One process per job: a crash, a leak or a decoder bug dies with it, and its memory goes back to
// the system at once. The cost, a process start (a few ms of CPU at low priority), is small next
// to the decode of an image large enough to be sent there.

// Image worker modes (NERUTALK_IMAGE_WORKERS).
const (
	WorkersProcess = "process"
	WorkersInline  = "inline"
)

// Environment of a worker process.
const (
	workerEnv       = "NERUTALK_IMAGE_WORKER"        // "1" in a worker
	workerMemoryEnv = "NERUTALK_IMAGE_WORKER_MEMORY" // its memory limit in bytes
)

// DefaultImageWorkerTimeout is how long one job may run in a worker before it is killed.
// Generous: a 40-megapixel 16-bit PNG takes seconds, and a worker at the lowest priority on a busy
// machine waits for CPU time.
const DefaultImageWorkerTimeout = 3 * time.Minute

// maxWorkers is the most worker processes a node runs at once (the heavy slots bound it further).
const maxWorkers = 2

func init() {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(runWorker(os.Stdin, os.Stdout, os.Stderr))
	}
}

// IsImageWorker reports whether this process was started as an image worker. It never returns
// true in practice: the package's init runs the job and exits first. main checks it anyway, so
// that a change to the start-up order fails loudly rather than starting a server in a worker.
func IsImageWorker() bool { return os.Getenv(workerEnv) == "1" }

// runWorker is a worker's whole life: one job from in, its result to out. It returns the exit
// status: 0 once a result (outputs or the job's error) is written, 2 when it cannot be.
func runWorker(in io.Reader, out io.Writer, errOut io.Writer) int {
	_ = cpuprio.Idle() // every thread of the worker; without SCHED_IDLE it runs as any process
	lowerGroupPriority()
	limit, _ := strconv.ParseInt(os.Getenv(workerMemoryEnv), 10, 64)
	if limit > 0 {
		debug.SetMemoryLimit(limit)
		limitData(limit)
	}
	op, maxPixels, data, err := readJob(bufio.NewReaderSize(in, 1<<20))
	if err != nil {
		fmt.Fprintln(errOut, "nerutalk image worker:", err)
		return 2
	}
	w := bufio.NewWriterSize(out, 1<<20)
	parts, err := runJob(op, newPipelineWorkers(maxPixels, 0, inlineWorkers), data)
	if err != nil {
		err = encodeError(w, err)
	} else {
		err = encodeResult(w, parts...)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(errOut, "nerutalk image worker: write result:", err)
		return 2
	}
	return 0
}

// runJob decodes data and makes a job's outputs, in this process. The server runs it for small
// images and in inline mode; a worker for everything else.
func runJob(op byte, p *pipeline, data []byte) ([]encodedImage, error) {
	d, err := p.decode(data, op == opFile)
	if err != nil {
		return nil, err
	}
	return jobOutputs(op, d)
}

// jobOutputs makes a job's outputs from a decoded image.
func jobOutputs(op byte, d *decoded) ([]encodedImage, error) {
	switch op {
	case opFile:
		// The encoders refuse a few oddities that the decoders accept: the client's image, not
		// the server, is at fault.
		full, err := reencode(d)
		if err != nil {
			return nil, invalidImage(err)
		}
		thumb, err := thumbnail(d, ThumbnailSize)
		if err != nil {
			return nil, invalidImage(err)
		}
		return []encodedImage{full, thumb}, nil
	case opAvatar:
		big, small, err := renderAvatar(d)
		if err != nil {
			return nil, err
		}
		return []encodedImage{
			{mime: mimeJPEG, data: big, width: AvatarSize, height: AvatarSize},
			{mime: mimeJPEG, data: small, width: AvatarThumbSize, height: AvatarThumbSize},
		}, nil
	}
	return nil, fmt.Errorf("media: unknown image job %d", op)
}

// inlineWorkers is the pool of inline mode: none.
var inlineWorkers *workerPool

// workerPool starts worker processes, at most maxWorkers at once.
type workerPool struct {
	exe     string // the binary to start
	env     []string
	timeout time.Duration
	slots   *semaphore.Weighted
	log     *slog.Logger
}

// newWorkerPool returns the pool of process mode, or nil (inline) when mode says so or the
// executable cannot be found.
func newWorkerPool(mode string, timeout time.Duration, log *slog.Logger) *workerPool {
	if mode == WorkersInline {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	exe, err := os.Executable()
	if err != nil {
		log.Warn("media: cannot find the executable to start image workers; processing images inline", "err", err)
		return nil
	}
	if timeout <= 0 {
		timeout = DefaultImageWorkerTimeout
	}
	return &workerPool{exe: exe, env: os.Environ(), timeout: timeout, slots: semaphore.NewWeighted(maxWorkers), log: log}
}

// Errors of process mode.
var (
	errWorkerTimeout = &apperr.Error{Kind: apperr.KindUnavailable, Code: "image_processing_timeout",
		Detail: "processing the image took too long; try again later or send a smaller image", RetryAfter: 30 * time.Second}
	errWorkerFailed = &apperr.Error{Kind: apperr.KindUnavailable, Code: "image_processing_failed",
		Detail: "the image could not be processed; try again later or send a smaller image", RetryAfter: 30 * time.Second}
)

// run runs a job in a worker, once more if the first worker crashes or answers garbage. cost is
// the job's memory estimate (imageCost), from which the worker's memory limit is set.
func (wp *workerPool) run(ctx context.Context, op byte, maxPixels int64, data []byte, cost int64) ([]encodedImage, error) {
	if err := wp.slots.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("media: waiting for an image worker: %w", err)
	}
	defer wp.slots.Release(1)
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		var parts []encodedImage
		parts, err = wp.once(ctx, op, maxPixels, data, cost)
		if err == nil {
			return parts, nil
		}
		var ae *apperr.Error
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("media: image worker: %w", ctx.Err())
		case errors.Is(err, errWorkerTimeout):
			wp.log.WarnContext(ctx, "media: image worker timed out", "timeout", wp.timeout, "bytes", len(data))
			return nil, err
		case errors.As(err, &ae):
			if ae.Kind == apperr.KindInternal {
				return nil, fmt.Errorf("media: image worker: %s", ae.Detail)
			}
			return nil, err // the image's fault, as inline would have said
		}
		wp.log.WarnContext(ctx, "media: image worker failed", "attempt", attempt, "err", err)
	}
	e := *errWorkerFailed
	e.Err = err
	return nil, &e
}

// workerMemoryLimit is the memory limit of a worker running a job of cost bytes: the job and a
// margin for the runtime and the input (data, which the worker holds too).
func workerMemoryLimit(cost int64, n int) int64 { return cost + int64(n) + 64<<20 }

// once starts one worker for the job and reads its result.
func (wp *workerPool) once(ctx context.Context, op byte, maxPixels int64, data []byte, cost int64) ([]encodedImage, error) {
	jctx, cancel := context.WithTimeout(ctx, wp.timeout)
	defer cancel()
	cmd := exec.CommandContext(jctx, wp.exe)
	cmd.Env = append(wp.env[:len(wp.env):len(wp.env)], workerEnv+"=1", "GOMAXPROCS=1",
		workerMemoryEnv+"="+strconv.FormatInt(workerMemoryLimit(cost, len(data)), 10))
	cmd.Stdin = io.MultiReader(bytes.NewReader(encodeJobHeader(op, maxPixels, len(data))), bytes.NewReader(data))
	out := &limitedBuffer{max: maxResultBytes}
	stderr := &limitedBuffer{max: 4 << 10, truncate: true}
	cmd.Stdout, cmd.Stderr = out, stderr
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = workerProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("media: start image worker: %w", err)
	}
	_ = cpuprio.IdleThread(cmd.Process.Pid) // in case the worker is slow to do it itself
	err := cmd.Wait()
	if jctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return nil, errWorkerTimeout
	}
	if err != nil {
		return nil, fmt.Errorf("media: image worker: %w (stderr: %q)", err, bytes.TrimSpace(stderr.b))
	}
	if out.over {
		return nil, errors.New("media: image worker wrote too much")
	}
	return parseResult(out.b)
}

// limitedBuffer keeps what is written to it up to max bytes, then fails the write (or, with
// truncate, drops the rest).
type limitedBuffer struct {
	mu       sync.Mutex
	b        []byte
	max      int
	over     bool
	truncate bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b)+len(p) > l.max {
		l.over = true
		if l.truncate {
			l.b = append(l.b, p[:l.max-len(l.b)]...)
			return len(p), nil
		}
		return 0, errors.New("media: too much output")
	}
	l.b = append(l.b, p...)
	return len(p), nil
}
