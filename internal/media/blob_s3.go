package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config locates a bucket of an S3-compatible service.
type S3Config struct {
	Endpoint  string // e.g. http://127.0.0.1:7070; empty = AWS's endpoint for Region
	Region    string // e.g. us-east-1
	Bucket    string
	AccessKey string
	SecretKey string
	PathStyle bool // bucket in the path (most self-hosted services) instead of the host name
}

// s3PartSize is the size of the parts of a multipart upload, and the largest object sent with a
// single PUT. One buffer of this size is held per upload in progress.
const s3PartSize = 8 << 20

// S3Store keeps blobs in an S3 bucket (AWS, MinIO, versitygw, Ceph, R2...). Requests are signed
// with SigV4. Put streams: objects up to s3PartSize go in one PUT, larger ones in a multipart
// upload with one part in memory at a time, aborted on failure so nothing half-written remains.
//
// It is safe for concurrent use (the SDK client is).
type S3Store struct {
	client *s3.Client
	bucket string
	parts  sync.Pool // *[]byte of s3PartSize
}

// NewS3Store returns a store for cfg's bucket. It does not contact the service: use Ping.
func NewS3Store(cfg S3Config) (*S3Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("media: s3: bucket is required")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("media: s3: access key and secret key are required")
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	creds := aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "nerutalk config"}
	opts := s3.Options{
		Region:       region,
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		UsePathStyle: cfg.PathStyle,
		// S3-compatible services do not all understand the newer default checksum headers.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	s := &S3Store{client: s3.New(opts), bucket: cfg.Bucket}
	s.parts.New = func() any { b := make([]byte, s3PartSize); return &b }
	return s, nil
}

// Ping checks that the bucket exists and the credentials work.
func (s *S3Store) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("media: s3 bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Put uploads r: one PUT when it fits in a part, a multipart upload otherwise.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if !validKey(key) {
		return 0, fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	bp := s.parts.Get().(*[]byte)
	defer s.parts.Put(bp)
	buf := *bp
	n, err := io.ReadFull(r, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return 0, s3Err("put", key, err)
		}
		return int64(n), nil
	case err != nil:
		return 0, fmt.Errorf("media: s3 put %s: %w", key, err)
	}
	return s.putMultipart(ctx, key, r, buf)
}

// putMultipart uploads buf (full) and then the rest of r, part by part.
func (s *S3Store) putMultipart(ctx context.Context, key string, r io.Reader, buf []byte) (int64, error) {
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return 0, s3Err("put", key, err)
	}
	fail := func(err error) (int64, error) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: &key, UploadId: up.UploadId,
		}); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort: %w", aerr))
		}
		return 0, err
	}
	var parts []types.CompletedPart
	var total int64
	n := len(buf)
	for num := int32(1); ; num++ {
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &s.bucket, Key: &key, UploadId: up.UploadId, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return fail(s3Err("put", key, err))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		total += int64(n)
		if n < len(buf) {
			break
		}
		n, err = io.ReadFull(r, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(fmt.Errorf("media: s3 put %s: %w", key, err))
		}
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return fail(s3Err("put", key, err))
	}
	return total, nil
}

// Get downloads the object, or the range of it, in one GET.
func (s *S3Store) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkOffset(off); err != nil {
		return nil, err
	}
	if !validKey(key) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	if n == 0 {
		return s.emptyAt(ctx, key, off)
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if off > 0 || n > 0 {
		rng := fmt.Sprintf("bytes=%d-", off)
		if n > 0 {
			rng = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
		}
		in.Range = &rng
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		err = s3Err("get", key, err)
		if errors.Is(err, ErrInvalidRange) {
			return s.emptyAt(ctx, key, off) // S3 refuses a range starting at the size
		}
		return nil, err
	}
	return out.Body, nil
}

// emptyAt returns an empty stream when off is within the object (or at its end).
func (s *S3Store) emptyAt(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if off > info.Size {
		return nil, fmt.Errorf("media: s3 get %s: %w", key, ErrInvalidRange)
	}
	return emptyReadCloser{}, nil
}

// Stat sends a HEAD request.
func (s *S3Store) Stat(ctx context.Context, key string) (BlobInfo, error) {
	if !validKey(key) {
		return BlobInfo{}, fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return BlobInfo{}, s3Err("stat", key, err)
	}
	info := BlobInfo{Size: aws.ToInt64(out.ContentLength)}
	if out.LastModified != nil {
		info.ModTime = *out.LastModified
	}
	return info, nil
}

// Delete removes the object (S3 answers success for a missing key).
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		if err = s3Err("delete", key, err); errors.Is(err, ErrBlobNotFound) {
			return nil
		}
		return err
	}
	return nil
}

// Presign returns a SigV4 query-signed GET URL valid for ttl (at most 7 days, S3's limit).
func (s *S3Store) Presign(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	req, err := s3.NewPresignClient(s.client).PresignGetObject(ctx,
		&s3.GetObjectInput{Bucket: &s.bucket, Key: &key}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("media: s3 presign %s: %w", key, err)
	}
	return req.URL, nil
}

func s3Err(op, key string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("media: s3 %s %s: %w", op, key, ErrBlobNotFound)
		case "InvalidRange":
			return fmt.Errorf("media: s3 %s %s: %w", op, key, ErrInvalidRange)
		}
	}
	return fmt.Errorf("media: s3 %s %s: %w", op, key, err)
}
